import { open } from "node:fs/promises";
import { isPcm16, parseWavHeader, wavSizes } from "../../shared/wav.js";

/** A WAV header, its fmt chunk and any LIST/fact chunks before `data` fit in this. */
const HEADER_READ_BYTES = 4096;

/**
 * A live producer sends a WAV header before it knows the length, with sizes of 0xFFFFFFFF or 0, and
 * most tools then misread the duration or refuse the file. Once the whole stream is in `path`, this
 * writes the RIFF and data sizes the file really has. Files that are not PCM WAV are left alone;
 * returns whether the sizes were rewritten.
 */
export async function fixWavSizes(path: string): Promise<boolean> {
  const file = await open(path, "r+");
  try {
    const head = Buffer.alloc(HEADER_READ_BYTES);
    const { bytesRead } = await file.read(head, 0, HEADER_READ_BYTES, 0);
    const layout = parseWavHeader(head.subarray(0, bytesRead));
    if (layout === undefined || layout instanceof Error || !isPcm16(layout)) return false;
    const { size } = await file.stat();
    const sizes = wavSizes(layout, size);
    const field = Buffer.alloc(4);
    field.writeUInt32LE(sizes.riff);
    await file.write(field, 0, 4, 4);
    field.writeUInt32LE(sizes.data);
    await file.write(field, 0, 4, layout.dataOffset - 4);
    return true;
  } finally {
    await file.close();
  }
}
