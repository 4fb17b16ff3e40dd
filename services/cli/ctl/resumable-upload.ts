import { createHash, type Hash } from "node:crypto";
import { open, type FileHandle } from "node:fs/promises";
import type { Client } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { UploadHeaderSchema, StorageService } from "../../../gen/mentatlab/v1/storage_pb.js";
import type { MediaRef } from "../../../gen/mentatlab/v1/common_pb.js";
import { withRetries, type RetryOptions } from "./retry.js";

/** Largest chunk the contract accepts (UploadChunkRequest.data max_len). */
export const maxChunkBytes = 4 * 1024 * 1024;
const fallbackChunkBytes = 1024 * 1024;

export interface ResumableUploadOptions {
  readonly header: MessageInitShape<typeof UploadHeaderSchema>;
  /** Continue an upload an earlier invocation started instead of creating one. */
  readonly uploadId?: string | undefined;
  readonly retry: RetryOptions;
  /** Called with the id as soon as it is known, so a failure can say how to resume. */
  readonly onStarted?: (uploadId: string, committedOffset: number) => void;
  readonly onProgress?: (committed: number) => void;
}

export interface UploadResult {
  readonly ref: MediaRef;
  readonly deduplicated: boolean;
}

/**
 * Uploads a file with CreateUpload / UploadChunk / CompleteUpload (unary calls, so it works over
 * HTTP/1.1). After a dropped connection it asks GetUploadStatus where the server got and continues
 * from there. The SHA-256 is computed while reading and sent with CompleteUpload for the server to verify.
 */
export async function resumableUpload(
  storage: Client<typeof StorageService>,
  path: string,
  options: ResumableUploadOptions,
): Promise<UploadResult> {
  const file = await open(path, "r");
  try {
    const size = (await file.stat()).size;
    const { uploadId, committedOffset, chunkBytes } = await start(storage, size, options);
    options.onStarted?.(uploadId, committedOffset);
    const hasher = new PrefixHasher(file);
    let offset = committedOffset;
    await withRetries(options.retry, async (attempt, progressed) => {
      if (attempt > 1) offset = Number((await storage.getUploadStatus({ uploadId })).committedOffset);
      options.onProgress?.(offset);
      while (offset < size) {
        const data = await readAt(file, offset, Math.min(chunkBytes, size - offset));
        await hasher.feed(offset, data);
        const { committedOffset: committed } = await storage.uploadChunk({ uploadId, offset: BigInt(offset), data });
        offset = Number(committed);
        options.onProgress?.(offset);
        progressed();
      }
    });
    await hasher.feedUpTo(size);
    const done = await storage.completeUpload({ uploadId, sha256: hasher.digest() });
    if (!done.ref) throw new Error(`server completed upload ${uploadId} without a MediaRef`);
    return { ref: done.ref, deduplicated: done.deduplicated };
  } finally {
    await file.close();
  }
}

async function start(
  storage: Client<typeof StorageService>,
  size: number,
  options: ResumableUploadOptions,
): Promise<{ uploadId: string; committedOffset: number; chunkBytes: number }> {
  if (options.uploadId !== undefined) {
    const status = await storage.getUploadStatus({ uploadId: options.uploadId });
    if (status.sizeBytes !== 0n && Number(status.sizeBytes) !== size) {
      throw new Error(`upload ${options.uploadId} was started for ${status.sizeBytes} bytes but the file has ${size}; is it the same file?`);
    }
    return { uploadId: options.uploadId, committedOffset: Number(status.committedOffset), chunkBytes: fallbackChunkBytes };
  }
  const created = await storage.createUpload({ header: { ...options.header, sizeBytes: BigInt(size) } });
  const recommended = created.recommendedChunkBytes || fallbackChunkBytes;
  return {
    uploadId: created.uploadId,
    committedOffset: Number(created.committedOffset),
    chunkBytes: Math.min(recommended, maxChunkBytes),
  };
}

async function readAt(file: FileHandle, offset: number, length: number): Promise<Uint8Array> {
  const buffer = new Uint8Array(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await file.read(buffer, filled, length - filled, offset + filled);
    if (bytesRead === 0) throw new Error(`file shrank while uploading (no bytes at offset ${offset + filled})`);
    filled += bytesRead;
  }
  return buffer;
}

/**
 * Hashes a file's bytes in order even though resuming may re-send or skip ranges: bytes already
 * hashed are ignored, and a range the server had before this process started is read from disk.
 */
class PrefixHasher {
  private readonly hash: Hash = createHash("sha256");
  private hashed = 0;

  constructor(private readonly file: FileHandle) {}

  async feed(offset: number, data: Uint8Array): Promise<void> {
    await this.feedUpTo(offset);
    const end = offset + data.byteLength;
    if (end > this.hashed) {
      this.hash.update(data.subarray(this.hashed - offset));
      this.hashed = end;
    }
  }

  async feedUpTo(offset: number): Promise<void> {
    while (this.hashed < offset) {
      const data = await readAt(this.file, this.hashed, Math.min(fallbackChunkBytes, offset - this.hashed));
      this.hash.update(data);
      this.hashed += data.byteLength;
    }
  }

  digest(): string {
    return this.hash.digest("hex");
  }
}
