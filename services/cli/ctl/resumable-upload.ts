import { createHash } from "node:crypto";
import { open, type FileHandle } from "node:fs/promises";
import type { Client } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { UploadHeaderSchema, StorageService } from "../../../gen/mentatlab/v1/storage_pb.js";
import { chunkBytesFor, ResumableUpload, type UploadResult } from "../../storage/client/resumable-upload.js";
import type { IncrementalSha256, UploadSource } from "../../storage/client/ordered-hasher.js";
import { withResume, type ResumePolicy } from "../../shared/resume.js";

export interface ResumableUploadOptions {
  readonly header: MessageInitShape<typeof UploadHeaderSchema>;
  /** Continue an upload an earlier invocation started instead of creating one. */
  readonly uploadId?: string | undefined;
  readonly retry: ResumePolicy;
  /** Called with the id as soon as it is known, so a failure can say how to resume. */
  readonly onStarted?: (uploadId: string, committedOffset: number) => void;
  readonly onProgress?: (committed: number) => void;
}

/**
 * Uploads a file with CreateUpload / UploadChunk / CompleteUpload (unary calls, so it works over
 * HTTP/1.1). After a dropped connection it asks GetUploadStatus where the server got and continues
 * from there. The SHA-256 is computed while reading and sent with CompleteUpload for the server to verify.
 */
export async function resumableUpload(storage: Client<typeof StorageService>, path: string, options: ResumableUploadOptions): Promise<UploadResult> {
  const file = await open(path, "r");
  try {
    const source = await fileSource(file);
    const { upload, committedOffset } = await start(storage, source, options);
    options.onStarted?.(upload.uploadId, committedOffset);
    let offset = committedOffset;
    let resuming = false;
    await withResume(options.retry, async (progressed) => {
      if (resuming) offset = await upload.committedOffset();
      resuming = true;
      options.onProgress?.(offset);
      await upload.sendFrom(offset, (committed) => {
        options.onProgress?.(committed);
        progressed();
      });
    });
    return await upload.complete();
  } finally {
    await file.close();
  }
}

async function start(
  storage: Client<typeof StorageService>,
  source: UploadSource,
  options: ResumableUploadOptions,
): Promise<{ upload: ResumableUpload; committedOffset: number }> {
  if (options.uploadId !== undefined) {
    const status = await storage.getUploadStatus({ uploadId: options.uploadId });
    if (status.sizeBytes !== 0n && Number(status.sizeBytes) !== source.size) {
      throw new Error(`upload ${options.uploadId} was started for ${status.sizeBytes} bytes but the file has ${source.size}; is it the same file?`);
    }
    return {
      // GetUploadStatus does not repeat CreateUpload's recommended chunk size: take the default.
      upload: new ResumableUpload(storage, options.uploadId, source, chunkBytesFor(0), nodeSha256()),
      committedOffset: Number(status.committedOffset),
    };
  }
  const created = await storage.createUpload({ header: { ...options.header, sizeBytes: BigInt(source.size) } });
  return {
    upload: new ResumableUpload(storage, created.uploadId, source, chunkBytesFor(created.recommendedChunkBytes), nodeSha256()),
    committedOffset: Number(created.committedOffset),
  };
}

async function fileSource(file: FileHandle): Promise<UploadSource> {
  const { size } = await file.stat();
  return { size, read: (offset, length) => readAt(file, offset, length) };
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

function nodeSha256(): IncrementalSha256 {
  const hash = createHash("sha256");
  return { update: (data) => hash.update(data), digest: () => hash.digest("hex") };
}
