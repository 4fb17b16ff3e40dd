// Test support: small real media files made by the tools a person would use (sharp, sox, ffmpeg).
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import sharp from "sharp";
import { ffmpegFromTestSources, requireTool } from "../../test/harness/index.js";

const run = promisify(execFile);

export interface MediaFixtures {
  /** 40×30 PNG. */
  readonly png: Buffer;
  /** 1.5 s of 16 kHz stereo 16-bit PCM WAV. */
  readonly wav: Buffer;
  /** 1 s of 64×48 H.264 at 10 fps in MP4. */
  readonly mp4: Buffer;
  /** The same picture with 1 s of AAC, `moov` before `mdat` (`-movflags +faststart`), as streamed MP4s are. */
  readonly faststartMp4: Buffer;
}

export async function makeMediaFixtures(dir: string): Promise<MediaFixtures> {
  const sox = requireTool("sox", "apt-get install -y sox");
  const wavPath = join(dir, "tone.wav");
  const mp4Path = join(dir, "clip.mp4");
  const faststartPath = join(dir, "faststart.mp4");
  await run(sox, ["-n", "-r", "16000", "-c", "2", "-b", "16", wavPath, "synth", "1.5", "sine", "440"]);
  await ffmpegFromTestSources(["testsrc=size=64x48:rate=10"], ["-t", "1", "-pix_fmt", "yuv420p", "-c:v", "libx264", mp4Path]);
  await ffmpegFromTestSources(
    ["testsrc=size=64x48:rate=10", "sine=frequency=440"],
    ["-t", "1", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-c:a", "aac", "-movflags", "+faststart", faststartPath],
  );
  const png = await sharp({ create: { width: 40, height: 30, channels: 3, background: "#08f" } })
    .png()
    .toBuffer();
  return { png, wav: await readFile(wavPath), mp4: await readFile(mp4Path), faststartMp4: await readFile(faststartPath) };
}
