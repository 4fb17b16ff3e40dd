import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeThumbnail } from "./thumbnail.js";

describe("makeThumbnail", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "thumb-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("shrinks a landscape picture to the longest side, keeping the aspect ratio and the colours", async () => {
    const input = join(dir, "wide.png");
    await sharp({ create: { width: 640, height: 320, channels: 3, background: { r: 200, g: 30, b: 30 } } })
      .png()
      .toFile(input);
    const output = join(dir, "wide-thumb.png");
    expect(await makeThumbnail(input, output, { maxSide: 128 })).toEqual({ width: 128, height: 64 });
    const written = await sharp(output).metadata();
    expect([written.format, written.width, written.height]).toEqual(["png", 128, 64]);
    const { dominant } = await sharp(output).stats();
    expect(dominant.r).toBeGreaterThan(150);
    expect(dominant.g).toBeLessThan(80);
  });

  it("never enlarges a picture smaller than the bound", async () => {
    const input = join(dir, "small.jpg");
    await sharp({ create: { width: 40, height: 90, channels: 3, background: "#00ff00" } })
      .jpeg()
      .toFile(input);
    expect(await makeThumbnail(input, join(dir, "small-thumb.png"), { maxSide: 128 })).toEqual({ width: 40, height: 90 });
  });
});
