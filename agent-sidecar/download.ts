import { createHash } from "node:crypto";
import { open, rename } from "node:fs/promises";
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import type { MediaRef } from "../gen/mentatlab/v1/common_pb.js";
import type { StorageService } from "../gen/mentatlab/v1/storage_pb.js";
import { withRetries, type Backoff } from "./retry.js";

export interface DownloadOptions {
  readonly attempts: number;
  readonly backoff: Backoff;
  readonly signal?: AbortSignal;
}

/**
 * Downloads `ref` to `path`, chunk by chunk with backpressure (each chunk is on disk before the next is
 * read). A dropped connection resumes at the next missing byte; the bytes are checked against the
 * ref's size and sha256 before the file appears at `path` (it is written to `path.partial` until then).
 */
export async function downloadToFile(storage: Client<typeof StorageService>, ref: MediaRef, path: string, options: DownloadOptions): Promise<void> {
  const partial = `${path}.partial`;
  const file = await open(partial, "w");
  const hash = createHash("sha256");
  let offset = 0n;
  try {
    await withRetries(options.attempts, options.backoff, options.signal, async () => {
      for await (const message of storage.download({ refId: ref.id, offset }, { signal: options.signal })) {
        if (message.part.case !== "chunk") continue;
        const chunk = message.part.value;
        if (chunk.offset !== offset) {
          throw new ConnectError(`storage sent bytes at offset ${chunk.offset} of ${ref.id}, expected ${offset}`, Code.DataLoss);
        }
        await file.write(chunk.data, 0, chunk.data.length, Number(offset));
        hash.update(chunk.data);
        offset += BigInt(chunk.data.length);
      }
    });
    await file.sync();
  } finally {
    await file.close();
  }
  if (offset !== ref.sizeBytes) {
    throw new ConnectError(`downloaded ${offset} bytes of ${ref.id}, its ref says ${ref.sizeBytes}`, Code.DataLoss);
  }
  const digest = hash.digest("hex");
  if (ref.sha256 && digest !== ref.sha256) {
    throw new ConnectError(`sha256 of downloaded ${ref.id} is ${digest}, its ref says ${ref.sha256}`, Code.DataLoss);
  }
  await rename(partial, path);
}
