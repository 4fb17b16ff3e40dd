import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeImage } from "./describe.js";

describe("describeImage", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "describe-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reports dimensions, format and the dominant colour of a mostly blue picture", async () => {
    const path = join(dir, "blue.png");
    const yellowPatch = await sharp({ create: { width: 50, height: 50, channels: 3, background: "#ffff00" } })
      .png()
      .toBuffer();
    await sharp({ create: { width: 300, height: 200, channels: 3, background: "#1040e0" } })
      .composite([{ input: yellowPatch, left: 10, top: 10 }])
      .removeAlpha()
      .png()
      .toFile(path);
    const description = await describeImage(path);
    expect(description).toMatchObject({ width: 300, height: 200, format: "png", channels: 3, hasAlpha: false, opaque: true });
    const [r, g, b] = [1, 3, 5].map((i) => parseInt(description.dominantColor.slice(i, i + 2), 16));
    expect(b).toBeGreaterThan(180);
    expect(r).toBeLessThan(60);
    expect(g).toBeLessThan(100);
    expect(description.entropy).toBeGreaterThan(0);
  });

  it("sees alpha in a transparent PNG", async () => {
    const path = join(dir, "clear.png");
    await sharp({ create: { width: 20, height: 20, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } })
      .png()
      .toFile(path);
    expect(await describeImage(path)).toMatchObject({ hasAlpha: true, opaque: false, channels: 4 });
  });
});
