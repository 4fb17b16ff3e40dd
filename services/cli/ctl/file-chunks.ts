import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";

/** Reads `path` from byte `start` in chunks of at most `chunkBytes`, one chunk in memory at a time. */
export async function* fileChunks(path: string, start: number, chunkBytes: number): AsyncGenerator<Uint8Array> {
  const stream = createReadStream(path, { start, highWaterMark: chunkBytes });
  try {
    for await (const chunk of stream) yield chunk as Buffer;
  } finally {
    stream.destroy();
  }
}

/** Lower-case hex SHA-256 of a file, read as a stream. */
export async function sha256OfFile(path: string, onBytes?: (n: number) => void): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of fileChunks(path, 0, 1024 * 1024)) {
    hash.update(chunk);
    onBytes?.(chunk.byteLength);
  }
  return hash.digest("hex");
}
