import { execFile } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rechunk } from "../../../sdk/chunks.js";
import { fixWavSizes, speak } from "./speech.js";

describe("speak", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tts-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("produces a WAV in 8 KiB chunks that sox reads with its real duration after the sizes are fixed", async () => {
    const chunks: Uint8Array[] = [];
    for await (const chunk of rechunk(
      speak("Hello from the mesh. This sentence is long enough for several chunks.", { voice: "en", wordsPerMinute: 160 }),
      8192,
    )) {
      chunks.push(chunk);
    }
    expect(chunks.length).toBeGreaterThan(3);
    expect(chunks.slice(0, -1).every((chunk) => chunk.length === 8192)).toBe(true);
    const path = join(dir, "speech.wav");
    await pipeline(Readable.from(chunks), createWriteStream(path));
    await fixWavSizes(path);
    const header = await readFile(path);
    expect(header.toString("ascii", 0, 4)).toBe("RIFF");
    expect(header.readUInt32LE(4)).toBe(header.length - 8);
    const { stdout } = await promisify(execFile)("sox", ["--i", "-D", path]);
    const seconds = Number(stdout.trim());
    expect(seconds).toBeGreaterThan(1);
    expect(seconds).toBeCloseTo((header.length - 44) / 2 / 22050, 1);
  });
});
