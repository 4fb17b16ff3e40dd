/** Chunk `n` of the bulk streamer: 64 KiB whose bytes depend on `n` and their position, so a gap or repeat changes the hash. */
export function bulkChunk(n: number): Uint8Array {
  const chunk = new Uint8Array(65_536);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (n * 31 + i) % 251;
  return chunk;
}
