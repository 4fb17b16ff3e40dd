import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, rename, stat, type FileHandle } from "node:fs/promises";
import type { Client } from "@connectrpc/connect";
import type { MediaRef } from "../../../gen/mentatlab/v1/common_pb.js";
import type { StorageService } from "../../../gen/mentatlab/v1/storage_pb.js";
import { writeOut } from "./io.js";
import { withResume, type ResumePolicy } from "../../shared/resume.js";

/** Where downloaded bytes go. */
export type DownloadTarget =
  { readonly kind: "file"; readonly path: string; readonly resume: boolean } | { readonly kind: "stream"; readonly stream: NodeJS.WritableStream };

export interface DownloadOptions {
  readonly retry: ResumePolicy;
  /** Called with the object once its header arrives, and with bytes written so far. */
  readonly onHeader?: (ref: MediaRef, offset: number) => void;
  readonly onProgress?: (written: number) => void;
}

/**
 * Streams an object to a file or a stream, one chunk in memory at a time, and checks its size and
 * SHA-256 against the MediaRef. A file is written to `<path>.part` and renamed only once verified,
 * so a file at `path` is always complete; `resume` continues an earlier `.part`. A dropped
 * connection is retried from the next missing byte.
 */
export async function download(storage: Client<typeof StorageService>, refId: string, target: DownloadTarget, options: DownloadOptions): Promise<MediaRef> {
  if (target.kind === "stream") return downloadInto(storage, refId, new StreamSink(target.stream), createHash("sha256"), options);
  const partPath = `${target.path}.part`;
  const existing = target.resume ? ((await stat(partPath).catch(() => undefined))?.size ?? 0) : 0;
  const hash = existing > 0 ? await hashPrefix(partPath, existing) : createHash("sha256");
  const file = await open(partPath, existing > 0 ? "r+" : "w");
  let ref: MediaRef;
  try {
    ref = await downloadInto(storage, refId, new FileSink(file, existing), hash, options);
  } finally {
    await file.close();
  }
  await rename(partPath, target.path);
  return ref;
}

interface Sink {
  readonly written: number;
  write(offset: number, data: Uint8Array): Promise<void>;
}

async function downloadInto(storage: Client<typeof StorageService>, refId: string, sink: Sink, hash: Hash, options: DownloadOptions): Promise<MediaRef> {
  let ref: MediaRef | undefined;
  await withResume(options.retry, async (progressed) => {
    for await (const message of storage.download({ refId, offset: BigInt(sink.written) })) {
      const part = message.part;
      if (part.case === "header") {
        if (ref === undefined) options.onHeader?.(part.value, sink.written);
        ref = part.value;
      } else if (part.case === "chunk") {
        const offset = Number(part.value.offset);
        if (offset !== sink.written) throw new Error(`server sent bytes at offset ${offset}, expected ${sink.written}`);
        hash.update(part.value.data);
        await sink.write(offset, part.value.data);
        options.onProgress?.(sink.written);
        progressed();
      }
    }
  });
  if (ref === undefined) throw new Error(`server sent no header for ${refId}`);
  if (BigInt(sink.written) !== ref.sizeBytes) {
    throw new Error(`download of ${refId} ended after ${sink.written} of ${ref.sizeBytes} bytes`);
  }
  const sha256 = hash.digest("hex");
  if (ref.sha256 !== "" && sha256 !== ref.sha256) {
    throw new Error(`download of ${refId} is corrupt: sha256 ${sha256}, expected ${ref.sha256}`);
  }
  return ref;
}

class FileSink implements Sink {
  constructor(
    private readonly file: FileHandle,
    public written: number,
  ) {}

  async write(offset: number, data: Uint8Array): Promise<void> {
    let done = 0;
    while (done < data.byteLength) {
      const { bytesWritten } = await this.file.write(data, done, data.byteLength - done, offset + done);
      done += bytesWritten;
    }
    this.written = offset + data.byteLength;
  }
}

class StreamSink implements Sink {
  written = 0;

  constructor(private readonly stream: NodeJS.WritableStream) {}

  async write(offset: number, data: Uint8Array): Promise<void> {
    await writeOut(this.stream, data);
    this.written = offset + data.byteLength;
  }
}

async function hashPrefix(path: string, length: number): Promise<Hash> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { start: 0, end: length - 1 })) hash.update(chunk as Buffer);
  return hash;
}
