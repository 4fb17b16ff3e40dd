import { Code, ConnectError } from "@connectrpc/connect";
import { BucketClass, type MediaRef } from "../../gen/mentatlab/v1/common_pb.js";
import type { Api } from "./api.js";
import { Sha256 } from "./sha256.js";

const maxChunkBytes = 4 * 1024 * 1024;
const maxRetries = 5;

/**
 * Uploads a File with the resumable unary calls (browsers cannot stream a request body over
 * Connect). Only one chunk is in memory at a time; after a failed chunk it asks the server how far
 * it got and continues from there. The SHA-256 of the bytes read goes with CompleteUpload, so the
 * server verifies that what it stored is what the browser read.
 */
export async function uploadFile(api: Api, file: File, temp: boolean, onProgress: (fraction: number) => void): Promise<MediaRef> {
  const created = await api.storage.createUpload({
    header: {
      filename: file.name,
      mimeType: file.type,
      sizeBytes: BigInt(file.size),
      bucketClass: temp ? BucketClass.TEMP : BucketClass.MEDIA,
    },
  });
  const uploadId = created.uploadId;
  const chunkBytes = Math.min(created.recommendedChunkBytes || 1024 * 1024, maxChunkBytes);
  let offset = Number(created.committedOffset);
  const hasher = new OrderedHasher(file);
  let failures = 0;
  while (offset < file.size) {
    try {
      const data = new Uint8Array(await file.slice(offset, offset + chunkBytes).arrayBuffer());
      await hasher.feed(offset, data);
      offset = Number((await api.storage.uploadChunk({ uploadId, offset: BigInt(offset), data })).committedOffset);
      failures = 0;
      onProgress(file.size === 0 ? 1 : offset / file.size);
    } catch (err) {
      if (!retryable(err) || ++failures > maxRetries) throw err;
      await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** failures));
      offset = Number((await api.storage.getUploadStatus({ uploadId })).committedOffset);
    }
  }
  await hasher.feedUpTo(file.size);
  const { ref } = await api.storage.completeUpload({ uploadId, sha256: hasher.digest() });
  if (!ref) throw new Error("the server completed the upload without a MediaRef");
  return ref;
}

// fetch() failures surface as Unknown in connect-web; both mean the connection, not the request, failed.
function retryable(err: unknown): boolean {
  const code = ConnectError.from(err).code;
  return code === Code.Unavailable || code === Code.Unknown || code === Code.DeadlineExceeded;
}

/** Hashes a file's bytes once each, in order, however often a resumed upload re-reads them. */
class OrderedHasher {
  private readonly hash = new Sha256();
  private hashed = 0;

  constructor(private readonly file: Blob) {}

  async feed(offset: number, data: Uint8Array): Promise<void> {
    await this.feedUpTo(offset);
    const end = offset + data.byteLength;
    if (end > this.hashed) {
      this.hash.update(data.subarray(this.hashed - offset));
      this.hashed = end;
    }
  }

  /** Hashes bytes the server already had (a resumed upload) by reading them from the file. */
  async feedUpTo(offset: number): Promise<void> {
    while (this.hashed < offset) {
      const end = Math.min(offset, this.hashed + maxChunkBytes);
      this.hash.update(new Uint8Array(await this.file.slice(this.hashed, end).arrayBuffer()));
      this.hashed = end;
    }
  }

  digest(): string {
    return this.hash.digest();
  }
}
