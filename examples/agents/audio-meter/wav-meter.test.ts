import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WavLevelMeter } from "./wav-meter.js";

const run = promisify(execFile);

describe("WavLevelMeter", () => {
  let dir: string;
  let tone: Buffer;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "meter-"));
    const path = join(dir, "tone.wav");
    await run("sox", ["-n", "-r", "16000", "-c", "1", "-b", "16", path, "synth", "1.5", "sine", "440", "vol", "0.5"]);
    tone = await readFile(path);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.each([1, 3, 7, 8192, 1 << 20])("measures a half-scale sine fed in %i-byte chunks", (size) => {
    const meter = new WavLevelMeter();
    for (let offset = 0; offset < tone.length; offset += size) meter.push(tone.subarray(offset, offset + size));
    const levels = meter.summary();
    expect(levels).toMatchObject({ sampleRate: 16000, channels: 1, bytes: tone.length, chunks: Math.ceil(tone.length / size) });
    expect(levels.durationSeconds).toBeCloseTo(1.5, 3);
    expect(levels.rmsDbfs).toBeCloseTo(-9.03, 1);
    expect(levels.peakDbfs).toBeCloseTo(-6.02, 1);
  });

  it("refuses what is not 16-bit PCM WAV", async () => {
    expect(() => new WavLevelMeter().push(Buffer.from("not a wav file at all"))).toThrow(/not a RIFF\/WAVE/);
    const path = join(dir, "float.wav");
    await run("sox", ["-n", "-r", "8000", "-c", "1", "-e", "floating-point", "-b", "32", path, "trim", "0", "0.1"]);
    const float = await readFile(path);
    expect(() => new WavLevelMeter().push(float)).toThrow(/only 16-bit PCM/);
  });
});
