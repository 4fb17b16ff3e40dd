import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { analyseAudio, parseSoxStat } from "./analyse.js";

const run = promisify(execFile);

describe("analyseAudio", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "audio-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("measures the duration and loudness of a generated half-scale sine", async () => {
    const path = join(dir, "tone.wav");
    await run("sox", ["-n", "-r", "16000", "-c", "1", "-b", "16", path, "synth", "1.5", "sine", "440", "vol", "0.5"]);
    const analysis = await analyseAudio(path);
    expect(analysis.durationSeconds).toBeCloseTo(1.5, 3);
    expect(analysis.sampleRate).toBe(16000);
    expect(analysis.channels).toBe(1);
    expect(analysis.peakAmplitude).toBeCloseTo(0.5, 2);
    expect(analysis.rmsAmplitude).toBeCloseTo(0.5 / Math.SQRT2, 2);
    expect(analysis.rmsDbfs).toBeCloseTo(-9.03, 1);
  });

  it("reports silence without a dB value", async () => {
    const path = join(dir, "silence.wav");
    await run("sox", ["-n", "-r", "8000", "-c", "2", path, "trim", "0", "0.5"]);
    const analysis = await analyseAudio(path);
    expect(analysis).toMatchObject({ channels: 2, rmsAmplitude: 0, rmsDbfs: null });
    expect(analysis.durationSeconds).toBeCloseTo(0.5, 3);
  });

  it("parses sox stat lines", () => {
    const fields = parseSoxStat(
      "Samples read:             24000\nLength (seconds):      1.500000\nRMS     amplitude:     0.353553\nMinimum amplitude:    -0.500000\n",
    );
    expect(fields.get("Length (seconds)")).toBe(1.5);
    expect(fields.get("Minimum amplitude")).toBe(-0.5);
  });
});
