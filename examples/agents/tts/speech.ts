import { open } from "node:fs/promises";
import { toolOutput } from "../tool-output.js";

export interface SpeechOptions {
  /** espeak-ng voice, e.g. `en`. */
  readonly voice: string;
  /** Words per minute. */
  readonly wordsPerMinute: number;
}

/**
 * Speaks `text` with `espeak-ng --stdout`: the WAV bytes as they are synthesised. The process is
 * killed if the consumer stops early; a non-zero exit fails the iteration with espeak's message.
 */
export function speak(text: string, options: SpeechOptions): AsyncGenerator<Uint8Array> {
  return toolOutput("espeak-ng", ["--stdout", "-v", options.voice, "-s", String(options.wordsPerMinute), "--", text]);
}

/**
 * espeak-ng writes its WAV to a pipe before knowing the length, so the RIFF and data sizes in the
 * header are placeholders. Once the whole file is on disk, write the real sizes so every tool reads it.
 */
export async function fixWavSizes(path: string): Promise<void> {
  const file = await open(path, "r+");
  try {
    const { size } = await file.stat();
    const header = Buffer.alloc(Math.min(size, 4096));
    await file.read(header, 0, header.length, 0);
    if (header.toString("ascii", 0, 4) !== "RIFF" || header.toString("ascii", 8, 12) !== "WAVE") {
      throw new Error(`${path} is not a RIFF/WAVE file`);
    }
    let offset = 12;
    while (offset + 8 <= header.length) {
      const id = header.toString("ascii", offset, offset + 4);
      if (id === "data") {
        const sizes = Buffer.alloc(4);
        sizes.writeUInt32LE(size - 8);
        await file.write(sizes, 0, 4, 4);
        sizes.writeUInt32LE(size - offset - 8);
        await file.write(sizes, 0, 4, offset + 4);
        return;
      }
      offset += 8 + header.readUInt32LE(offset + 4);
    }
    throw new Error(`${path} has no data chunk in its first ${header.length} bytes`);
  } finally {
    await file.close();
  }
}
