import { rmSync, writeFileSync } from "node:fs";
import { create } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { MediaConstraintsSchema, MediaMetadataSchema } from "../../gen/mentatlab/v1/common_pb.js";
import { makeTempDir, removeTempDir } from "../../test/harness/index.js";
import { FileBlobStore } from "./file-blob-store.js";
import { FaultReportingBlobStore } from "./object-storage-faults.js";
import { type MediaFixtures, makeMediaFixtures } from "./testing.js";
import { ceilingViolations, constraintViolations, MetadataExtractor, mimeTypeAccepted } from "./media-metadata.js";

describe("MetadataExtractor", () => {
  let dir: string;
  let media: MediaFixtures;
  let store: FileBlobStore;
  let extractor: MetadataExtractor;
  beforeAll(async () => {
    dir = makeTempDir("meta");
    media = await makeMediaFixtures(dir);
    store = new FileBlobStore(`${dir}/blobs`);
    extractor = new MetadataExtractor(store, "ffprobe");
    await store.write("png", [media.png]);
    await store.write("wav", [media.wav]);
    await store.write("mp4", [media.mp4]);
    await store.write("bad.wav", [media.wav.subarray(0, 40)]);
    await store.write("faststart.mp4", [media.faststartMp4]);
    const mdat = media.faststartMp4.indexOf("mdat");
    expect(mdat).toBeGreaterThan(media.faststartMp4.indexOf("moov"));
    // Cut halfway through the samples, and inside the very last sample (ffprobe reads that one short).
    const halfway = mdat + Math.floor((media.faststartMp4.length - mdat) / 2);
    await store.write("cut-halfway.mp4", [media.faststartMp4.subarray(0, halfway)]);
    await store.write("cut-last-byte.mp4", [media.faststartMp4.subarray(0, media.faststartMp4.length - 1)]);
  });
  afterAll(() => removeTempDir(dir));

  it("reads image dimensions", async () => {
    const meta = await extractor.extract("png", "image/png");
    expect([meta.width, meta.height, meta.codec]).toEqual([40, 30, "png"]);
  });

  it("reads audio duration, codec, sample rate and channels with ffprobe", async () => {
    const meta = await extractor.extract("wav", "audio/wav");
    expect(meta.durationSeconds).toBeCloseTo(1.5, 2);
    expect([meta.codec, meta.sampleRate, meta.channels, meta.container]).toEqual(["pcm_s16le", 16000, 2, "wav"]);
    // 16 kHz × 2 channels × 16 bit = 512 kbit/s of samples, plus the container header.
    expect(Number(meta.bitRate)).toBeGreaterThanOrEqual(512_000);
    expect(Number(meta.bitRate)).toBeLessThan(520_000);
  });

  it("reads video dimensions, codec and frame rate with ffprobe", async () => {
    const meta = await extractor.extract("mp4", "video/mp4");
    expect([meta.width, meta.height, meta.codec, meta.frameRate, meta.container]).toEqual([64, 48, "h264", 10, "mp4"]);
    expect(meta.durationSeconds).toBeCloseTo(1, 1);
  });

  it("reads a whole faststart MP4", async () => {
    const meta = await extractor.extract("faststart.mp4", "video/mp4");
    expect([meta.width, meta.height, meta.codec, meta.channels]).toEqual([64, 48, "h264", 1]);
  });

  it.each([
    ["halfway through mdat", "cut-halfway.mp4", /stream \d \((h264|aac)\) declares \d+ samples but only \d+ are in the file/],
    ["inside the last sample", "cut-last-byte.mp4", /"mdat" box at offset \d+ declares \d+ bytes, but only \d+ are there/],
  ])("refuses a faststart MP4 truncated %s", async (_where, key, reason) => {
    const err = await extractor.extract(key, "video/mp4").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.InvalidArgument);
    expect((err as ConnectError).rawMessage).toMatch(reason);
    expect((err as ConnectError).rawMessage).toContain("upload the complete file");
  });

  it("refuses media that cannot be decoded", async () => {
    const err = await extractor.extract("bad.wav", "audio/wav").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.InvalidArgument);
  });
});

describe("MetadataExtractor when the store fails", () => {
  it("says the server's time limit ran out, not that the media is bad, when ffprobe takes too long", async () => {
    const dir = makeTempDir("meta-hung");
    // A stand-in for ffprobe stuck on a huge file behind slow storage.
    const hung = `${dir}/hung-ffprobe`;
    writeFileSync(hung, "#!/bin/sh\nexec sleep 30\n", { mode: 0o755 });
    const store = new FileBlobStore(`${dir}/blobs`);
    await store.write("wav", [Buffer.from("RIFF")]);
    const started = Date.now();
    const err = await new MetadataExtractor(store, hung, 300)
      .extract("wav", "audio/wav")
      .catch((e: unknown) => e)
      .finally(async () => {
        await store.close();
        removeTempDir(dir);
      });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.DeadlineExceeded);
    expect((err as ConnectError).rawMessage).toBe(
      "reading the audio/wav content's metadata took longer than the server allows (0.3 s, STORAGE_FFPROBE_TIMEOUT_SECONDS); nothing was stored",
    );
  });

  it("reports the store's fault, not undecodable media, when the bytes vanish with the storage root", async () => {
    const dir = makeTempDir("meta-root-gone");
    try {
      const media = await makeMediaFixtures(dir);
      const root = `${dir}/blobs`;
      const store = new FaultReportingBlobStore(new FileBlobStore(root));
      await store.write("wav", [media.wav]);
      rmSync(root, { recursive: true, force: true });
      const err = await new MetadataExtractor(store, "ffprobe").extract("wav", "audio/wav").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code).toBe(Code.Unavailable);
      expect((err as ConnectError).rawMessage).toContain("object storage is unavailable");
    } finally {
      removeTempDir(dir);
    }
  });
});

describe("constraintViolations", () => {
  it("lists every limit the metadata breaks", () => {
    const meta = create(MediaMetadataSchema, { width: 800, height: 600, durationSeconds: 12, sampleRate: 48000, channels: 2 });
    const limits = create(MediaConstraintsSchema, {
      acceptedMimeTypes: ["audio/*"],
      maxWidth: 640,
      maxHeight: 600,
      maxDurationSeconds: 10,
      maxSampleRate: 44100,
      maxChannels: 1,
      maxSizeBytes: 10n,
    });
    const out = constraintViolations(meta, "video/mp4", 11, limits);
    expect(out).toHaveLength(6);
    expect(out.join("; ")).toContain("width 800 px is over the pin's 640");
    expect(constraintViolations(meta, "video/mp4", 11, undefined)).toEqual([]);
  });

  it("matches wildcards", () => {
    expect(mimeTypeAccepted("image/png", ["image/*"])).toBe(true);
    expect(mimeTypeAccepted("image/png", ["audio/*", "image/jpeg"])).toBe(false);
    expect(mimeTypeAccepted("image/png", [])).toBe(true);
  });
});

describe("ceilingViolations", () => {
  const ceilings = { maxDimensionPx: 1000, maxPixels: 500_000, maxDurationSeconds: 60 };

  it("names each ceiling exceeded and the variable that raises it", () => {
    const meta = create(MediaMetadataSchema, { width: 1200, height: 800, durationSeconds: 61 });
    expect(ceilingViolations(meta, ceilings)).toEqual([
      "1200 × 800 px is over the 1000-px limit per side (STORAGE_MAX_DIMENSION_PX)",
      "960000 pixels per frame are over the limit of 500000 (STORAGE_MAX_PIXELS)",
      "duration 61.000 s is over the 60-s limit (STORAGE_MAX_DURATION_SECONDS)",
    ]);
  });

  it("accepts what fits, and a ceiling of 0 is off", () => {
    expect(ceilingViolations(create(MediaMetadataSchema, { width: 1000, height: 500, durationSeconds: 60 }), ceilings)).toEqual([]);
    const off = { maxDimensionPx: 0, maxPixels: 0, maxDurationSeconds: 0 };
    expect(ceilingViolations(create(MediaMetadataSchema, { width: 2 ** 31 - 1, height: 2 ** 31 - 1, durationSeconds: 1e9 }), off)).toEqual([]);
  });
});
