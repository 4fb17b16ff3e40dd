import type { Client } from "@connectrpc/connect";
import type { MediaRef } from "../../../gen/mentatlab/v1/common_pb.js";
import type { StorageService } from "../../../gen/mentatlab/v1/storage_pb.js";
import { OrderedHasher, type IncrementalSha256, type UploadSource } from "./ordered-hasher.js";

// The client side of CreateUpload / UploadChunk / CompleteUpload, shared by mentatctl and the web UI:
// it must stay runtime-neutral (no node: imports) because esbuild bundles it for browsers.

/** Largest chunk the contract accepts (UploadChunkRequest.data max_len). */
const maxChunkBytes = 4 * 1024 * 1024;
const fallbackChunkBytes = 1024 * 1024;

/** The chunk size to send: what CreateUpload recommended, within the contract's limit. */
export function chunkBytesFor(recommendedChunkBytes: number): number {
  return Math.min(recommendedChunkBytes || fallbackChunkBytes, maxChunkBytes);
}

export interface UploadResult {
  readonly ref: MediaRef;
  readonly deduplicated: boolean;
}

/**
 * One upload the server already knows by id. Chunks are read from the source one at a time and
 * hashed in order, so the SHA-256 sent with CompleteUpload lets the server verify that what it
 * stored is what the client read. Retrying is the caller's: after a failure, resume with
 * `sendFrom(await committedOffset())`.
 */
export class ResumableUpload {
  private readonly hasher: OrderedHasher;

  constructor(
    private readonly storage: Client<typeof StorageService>,
    readonly uploadId: string,
    private readonly source: UploadSource,
    private readonly chunkBytes: number,
    hash: IncrementalSha256,
  ) {
    this.hasher = new OrderedHasher(source, hash);
  }

  /** Where the server got, e.g. after a dropped connection. */
  async committedOffset(): Promise<number> {
    return Number((await this.storage.getUploadStatus({ uploadId: this.uploadId })).committedOffset);
  }

  /** Sends the source from `offset` to its end; `onCommitted` hears each offset the server committed. */
  async sendFrom(offset: number, onCommitted: (committed: number) => void): Promise<void> {
    const size = this.source.size;
    while (offset < size) {
      const data = await this.source.read(offset, Math.min(this.chunkBytes, size - offset));
      await this.hasher.feed(offset, data);
      const { committedOffset } = await this.storage.uploadChunk({ uploadId: this.uploadId, offset: BigInt(offset), data });
      offset = Number(committedOffset);
      onCommitted(offset);
    }
  }

  async complete(): Promise<UploadResult> {
    await this.hasher.feedUpTo(this.source.size);
    const done = await this.storage.completeUpload({ uploadId: this.uploadId, sha256: this.hasher.digest() });
    if (!done.ref) throw new Error(`server completed upload ${this.uploadId} without a MediaRef`);
    return { ref: done.ref, deduplicated: done.deduplicated };
  }
}
