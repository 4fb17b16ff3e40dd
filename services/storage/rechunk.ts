import type { ByteSource } from "./blob-store.js";

/**
 * Re-slices a byte stream into chunks of exactly `size` bytes (the last may be shorter). Pulls from
 * `source` only when the consumer asks for more, so backpressure passes straight through.
 */
export async function* rechunk(source: ByteSource, size: number): AsyncGenerator<Uint8Array> {
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  for await (const piece of source) {
    let rest = piece;
    if (pendingBytes > 0) {
      const take = Math.min(size - pendingBytes, rest.byteLength);
      pending.push(rest.subarray(0, take));
      pendingBytes += take;
      rest = rest.subarray(take);
      if (pendingBytes < size) continue;
      yield Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
    }
    while (rest.byteLength >= size) {
      yield rest.subarray(0, size);
      rest = rest.subarray(size);
    }
    if (rest.byteLength > 0) {
      pending.push(rest);
      pendingBytes = rest.byteLength;
    }
  }
  if (pendingBytes > 0) yield Buffer.concat(pending, pendingBytes);
}
