import type { ByteSource } from "./blob-store.js";

/**
 * Walks the top-level boxes of an ISO base media file (MP4, MOV, M4A, 3GP) as its bytes stream past,
 * holding at most one box header. A whole file is tiled by its boxes; a file cut short, e.g. a
 * faststart MP4 truncated inside `mdat`, ends before the last box it declares. ffprobe does not see
 * that when the cut falls inside the last sample: it returns the short sample as read.
 *
 * Returns what is wrong, as a sentence, or undefined when the boxes fit the bytes.
 */
export async function boxLayoutProblem(body: ByteSource): Promise<string | undefined> {
  let position = 0;
  /** Start and declared end of the box being skipped; the next header starts at `boxEnd`. */
  let boxStart = 0;
  let boxEnd = 0;
  let boxType = "";
  const header = new Uint8Array(16);
  let headerBytes = 0;
  for await (const chunk of body) {
    let at = 0;
    while (at < chunk.length) {
      if (position + at < boxEnd) {
        at = Math.min(chunk.length, boxEnd - position);
        continue;
      }
      const needed = headerBytes >= 8 && sizeField(header) === 1 ? 16 : 8;
      const take = Math.min(needed - headerBytes, chunk.length - at);
      header.set(chunk.subarray(at, at + take), headerBytes);
      headerBytes += take;
      at += take;
      if (headerBytes < needed || (needed === 8 && sizeField(header) === 1)) continue;
      boxStart = boxEnd;
      boxType = new TextDecoder("latin1").decode(header.subarray(4, 8));
      const size = sizeOf(header);
      // Size 0: the box runs to the end of the file, whatever that is.
      if (size === 0) return undefined;
      if (size < needed) return `the ${JSON.stringify(boxType)} box at offset ${boxStart} declares ${size} bytes, less than its own header`;
      boxEnd = boxStart + size;
      headerBytes = 0;
    }
    position += chunk.length;
  }
  if (headerBytes > 0) return `the file ends inside the header of a box at offset ${boxEnd}`;
  if (boxEnd > position) {
    return `the file is truncated: its ${JSON.stringify(boxType)} box at offset ${boxStart} declares ${boxEnd - boxStart} bytes, but only ${position - boxStart} are there`;
  }
  return undefined;
}

function sizeField(header: Uint8Array): number {
  return new DataView(header.buffer, header.byteOffset, 8).getUint32(0);
}

/** The box size: 32-bit, or 64-bit after the type when the 32-bit field is 1. */
function sizeOf(header: Uint8Array): number {
  const size32 = sizeField(header);
  return size32 === 1 ? Number(new DataView(header.buffer, header.byteOffset + 8, 8).getBigUint64(0)) : size32;
}
