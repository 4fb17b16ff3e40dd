import { execFile } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rechunk } from "../../../sdk/chunks.js";
import { extractPoster, transcodeClip } from "./transcode.js";
import { ffmpegFromTestSources } from "../../../test/harness/index.js";

const run = promisify(execFile);

describe("transcodeClip and extractPoster", () => {
  let dir: string;
  let source: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "video-"));
    source = join(dir, "testsrc.mkv");
    await ffmpegFromTestSources(["testsrc=duration=2:size=320x240:rate=15"], ["-c:v", "libx264", "-pix_fmt", "yuv420p", source]);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("streams a playable fragmented MP4 at the requested width in 64 KiB chunks", async () => {
    const chunks: Uint8Array[] = [];
    for await (const chunk of rechunk(transcodeClip(source, { width: 160, maxSeconds: 10 }), 64 * 1024)) chunks.push(chunk);
    expect(chunks.slice(0, -1).every((chunk) => chunk.length === 64 * 1024)).toBe(true);
    const out = join(dir, "clip.mp4");
    await pipeline(Readable.from(chunks), createWriteStream(out));
    const { stdout } = await run("ffprobe", [
      "-v",
      "error",
      "-select_streams",
      "v:0",
      "-count_frames",
      "-show_entries",
      "stream=codec_name,width,height,nb_read_frames",
      "-of",
      "json",
      out,
    ]);
    const stream = (JSON.parse(stdout) as { streams: { codec_name: string; width: number; height: number; nb_read_frames: string }[] }).streams[0];
    expect(stream).toMatchObject({ codec_name: "h264", width: 160, height: 120 });
    expect(Number(stream?.nb_read_frames)).toBe(30);
  });

  it("writes the first frame as a PNG poster", async () => {
    const poster = join(dir, "poster.png");
    await extractPoster(source, poster, 160);
    expect(await sharp(poster).metadata()).toMatchObject({ format: "png", width: 160, height: 120 });
  });

  it("fails with ffmpeg's message on a file that is not video", async () => {
    const bogus = join(dir, "bogus.mp4");
    await pipeline(Readable.from([Buffer.from("not a video")]), createWriteStream(bogus));
    const consume = async () => {
      for await (const _ of transcodeClip(bogus, { width: 160, maxSeconds: 1 })) void _;
    };
    await expect(consume()).rejects.toThrow(/ffmpeg exited with code/);
  });
});
