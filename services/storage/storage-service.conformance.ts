import { createHash, randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BucketClass, MediaConstraintsSchema } from "../../gen/mentatlab/v1/common_pb.js";
import { StorageService, UploadHeaderSchema, type UploadRequest } from "../../gen/mentatlab/v1/storage_pb.js";
import { inMemoryClient, testPrincipal } from "../../test/support/in-memory.js";
import { openDatabase } from "../shared/sqlite.js";
import { Redis } from "ioredis";
import { makeTempDir, removeTempDir, startRedis, startS3 } from "../../test/harness/index.js";
import { createBlobStore } from "./backend.js";
import type { BlobStore } from "./blob-store.js";
import { type StorageConfig, storageConfigFromEnv } from "./config.js";
import { createStorage, type StorageOverrides, type StorageRuntime } from "./index.js";
import { refDocKey } from "./keys.js";
import { type MediaFixtures, makeMediaFixtures } from "./testing.js";

/** A backend the suite can ask for fresh, empty storage (a new directory or bucket) per runtime. */
export interface StorageBackendFixture {
  freshEnv(): Promise<Record<string, string>>;
  dispose(): Promise<void>;
}

/**
 * S3 (fauxqs) with quotas, refs and holds in Redis: each runtime gets an empty bucket named
 * `<bucketPrefix>-…` and its own Redis database, as a fresh deployment would.
 */
export async function s3AndRedisBackend(bucketPrefix: string): Promise<StorageBackendFixture> {
  const s3 = await startS3();
  const redis = await startRedis();
  let n = 0;
  return {
    freshEnv: async () => {
      const db = n++;
      const admin = new Redis(`${redis.url}/${db}`);
      await admin.flushdb();
      admin.disconnect();
      return {
        S3_ENDPOINT: s3.endpoint,
        S3_BUCKET: await s3.createBucket(`${bucketPrefix}-${db}-${Date.now()}`),
        S3_REGION: s3.region,
        AWS_ACCESS_KEY_ID: s3.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
        REDIS_URL: `${redis.url}/${db}`,
      };
    },
    dispose: async () => {
      await s3.stop();
      await redis.stop();
    },
  };
}

type StorageClient = Client<typeof StorageService>;

const KiB = 1024;
const MiB = 1024 * KiB;
const BASE_ENV = {
  MENTATLAB_PRESIGN_SECRET: "conformance-secret-0123456789",
  MENTATLAB_PUBLIC_URL: "http://127.0.0.1:9999",
  STORAGE_SWEEP_INTERVAL_MS: "0",
  STORAGE_MAX_IMAGE_BYTES: String(MiB),
  STORAGE_MAX_TEXT_BYTES: String(64 * KiB),
  STORAGE_MAX_OTHER_BYTES: String(16 * MiB),
};

/** The first bytes of a PNG whose header claims `width` × `height` pixels (image-size reads no further). */
export function pngClaiming(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const chunk = (type: string, data: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    return Buffer.concat([length, Buffer.from(type, "latin1"), data, Buffer.alloc(4)]);
  };
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", ihdr), chunk("IEND", Buffer.alloc(0))]);
}

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

export async function* uploadStream(header: MessageInitShape<typeof UploadHeaderSchema>, bytes: Uint8Array, chunk = 64 * KiB): AsyncGenerator<UploadRequest> {
  yield { $typeName: "mentatlab.v1.UploadRequest", part: { case: "header", value: create(UploadHeaderSchema, header) } };
  for (let at = 0; at < bytes.length; at += chunk) {
    yield { $typeName: "mentatlab.v1.UploadRequest", part: { case: "chunk", value: bytes.subarray(at, at + chunk) } };
  }
}

export async function downloadAll(client: StorageClient, refId: string, opts: { offset?: bigint; length?: bigint; chunkBytes?: number } = {}) {
  const sizes: number[] = [];
  const parts: Uint8Array[] = [];
  let header;
  let expectedOffset = opts.offset ?? 0n;
  for await (const msg of client.download({ refId, ...opts })) {
    if (msg.part.case === "header") header = msg.part.value;
    if (msg.part.case === "chunk") {
      expect(msg.part.value.offset).toBe(expectedOffset);
      expectedOffset += BigInt(msg.part.value.data.byteLength);
      sizes.push(msg.part.value.data.byteLength);
      parts.push(msg.part.value.data);
    }
  }
  return { header, sizes, bytes: Buffer.concat(parts) };
}

export async function codeOf(promise: Promise<unknown>): Promise<{ code: Code | undefined; message: string }> {
  try {
    await promise;
    return { code: undefined, message: "" };
  } catch (err) {
    const e = ConnectError.from(err);
    return { code: e.code, message: e.rawMessage };
  }
}

export async function waitFor(condition: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function keysUnder(store: BlobStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const info of store.list(prefix)) keys.push(info.key);
  return keys;
}

/** One StorageService runtime with the blob store it writes to, for inspection. */
export interface RuntimeUnderTest {
  readonly runtime: StorageRuntime;
  readonly config: StorageConfig;
  readonly store: BlobStore;
  client(user?: string, workspace?: string): StorageClient;
  close(): Promise<void>;
}

/** Where a runtime keeps its database (a restart reuses it) and what it replaces in the configured parts. */
export interface RuntimeOptions {
  readonly dataDir?: string;
  readonly overrides?: StorageOverrides;
}

export async function startRuntime(backend: StorageBackendFixture, env: Record<string, string> = {}, options: RuntimeOptions = {}): Promise<RuntimeUnderTest> {
  const dataDir = options.dataDir ?? makeTempDir("storage-data");
  const config = storageConfigFromEnv({ ...BASE_ENV, ...(await backend.freshEnv()), ...env }, dataDir);
  const runtime = await createStorage(config, options.overrides);
  const store = createBlobStore(config.backend);
  return {
    runtime,
    config,
    store,
    client: (user = "alice", workspace = "ws-a") =>
      inMemoryClient(StorageService, (router) => router.service(StorageService, runtime.impl), testPrincipal({ user, workspace })),
    async close() {
      await runtime.close();
      await store.close();
      if (!options.dataDir) removeTempDir(dataDir);
    },
  };
}

/** Removes a ref from the index behind the service's back, as if it had never been registered. */
async function forgetRef(sut: RuntimeUnderTest, workspace: string, refId: string): Promise<void> {
  if (sut.config.databaseFile) {
    const db = openDatabase(sut.config.databaseFile);
    try {
      db.prepare("DELETE FROM refs WHERE workspace = ? AND ref_id = ?").run(workspace, refId);
    } finally {
      db.close();
    }
    return;
  }
  await sut.store.delete(refDocKey(workspace, refId));
}

/** The StorageService's behaviour, the same on every backend; called once per backend. */
export function describeStorageServiceConformance(name: string, factory: () => Promise<StorageBackendFixture>): void {
  describe(`StorageService conformance: ${name}`, () => {
    let backend: StorageBackendFixture;
    let sut: RuntimeUnderTest;
    let media: MediaFixtures;
    let mediaDir: string;
    beforeAll(async () => {
      backend = await factory();
      sut = await startRuntime(backend);
      mediaDir = makeTempDir("media");
      media = await makeMediaFixtures(mediaDir);
    });
    afterAll(async () => {
      await sut?.close();
      await backend?.dispose();
      if (mediaDir) removeTempDir(mediaDir);
    });

    it("uploads an image by client stream and returns a complete MediaRef", async () => {
      const client = sut.client("alice", "ws-upload");
      const before = Date.now();
      const { ref, deduplicated } = await client.upload(
        uploadStream({ filename: "dot.png", mimeType: "image/png", sizeBytes: BigInt(media.png.length) }, media.png, 100),
      );
      expect(deduplicated).toBe(false);
      expect(ref).toMatchObject({
        workspace: "ws-upload",
        bucketClass: BucketClass.MEDIA,
        mimeType: "image/png",
        sha256: sha256(media.png),
        filename: "dot.png",
        owner: "alice",
      });
      expect(ref?.sizeBytes).toBe(BigInt(media.png.length));
      expect([ref?.metadata?.width, ref?.metadata?.height]).toEqual([40, 30]);
      const expiresMs = Number(ref!.expiresAt!.seconds) * 1000;
      expect(expiresMs - before).toBeGreaterThan(7 * 86_400_000 - 60_000);
      expect(expiresMs - before).toBeLessThanOrEqual(7 * 86_400_000 + 60_000);
      const { ref: stat } = await client.stat({ refId: ref!.id });
      expect(stat).toEqual(ref);
    });

    it("downloads whole, by range and resumed, with chunk sizes by media type", async () => {
      const client = sut.client("alice", "ws-download");
      const blob = randomBytes(300 * KiB + 5);
      const { ref } = await client.upload(uploadStream({}, blob, 50 * KiB));
      expect(ref?.mimeType).toBe("application/octet-stream");
      const whole = await downloadAll(client, ref!.id);
      expect(whole.header).toEqual(ref);
      expect(sha256(whole.bytes)).toBe(ref!.sha256);
      expect(whole.sizes).toEqual([64 * KiB, 64 * KiB, 64 * KiB, 64 * KiB, 44 * KiB + 5]);
      const ranged = await downloadAll(client, ref!.id, { offset: 1000n, length: 70_000n, chunkBytes: 16 * KiB });
      expect(ranged.bytes).toEqual(blob.subarray(1000, 71_000));
      expect(ranged.sizes.every((s, i, all) => s === 16 * KiB || i === all.length - 1)).toBe(true);
      const resumed = await downloadAll(client, ref!.id, { offset: 200_000n });
      expect(resumed.bytes).toEqual(blob.subarray(200_000));
      expect((await downloadAll(client, ref!.id, { offset: BigInt(blob.length) })).bytes).toHaveLength(0);
      expect((await codeOf(downloadAll(client, ref!.id, { offset: BigInt(blob.length + 1) }))).code).toBe(Code.OutOfRange);

      const { ref: wav } = await client.upload(uploadStream({ mimeType: "audio/x-wav" }, media.wav));
      expect(wav?.mimeType).toBe("audio/wav");
      expect(new Set((await downloadAll(client, wav!.id)).sizes.slice(0, -1))).toEqual(new Set([8 * KiB]));
      const text = Buffer.from(JSON.stringify({ rows: Array.from({ length: 300 }, (_, i) => ({ i })) }));
      const { ref: json } = await client.upload(uploadStream({ mimeType: "application/json" }, text));
      expect(json?.mimeType).toBe("application/json");
      const textDownload = await downloadAll(client, json!.id);
      expect(textDownload.bytes.toString()).toBe(text.toString());
      expect(textDownload.sizes[0]).toBe(KiB);
    });

    it("extracts audio and video metadata with ffprobe", async () => {
      const client = sut.client("alice", "ws-meta");
      const { ref: wav } = await client.upload(uploadStream({ mimeType: "audio/wav" }, media.wav));
      expect(wav?.metadata).toMatchObject({ codec: "pcm_s16le", sampleRate: 16000, channels: 2, container: "wav" });
      expect(wav?.metadata?.durationSeconds).toBeCloseTo(1.5, 2);
      const { ref: mp4 } = await client.upload(uploadStream({ mimeType: "video/mp4" }, media.mp4));
      expect(mp4?.metadata).toMatchObject({ width: 64, height: 48, codec: "h264", frameRate: 10 });
      const c = create(MediaConstraintsSchema, { maxDurationSeconds: 1, maxChannels: 1 });
      const refused = await codeOf(client.upload(uploadStream({ mimeType: "audio/wav", constraints: c, bucketClass: BucketClass.TEMP }, media.wav)));
      expect(refused.code).toBe(Code.InvalidArgument);
      expect(refused.message).toContain("duration 1.500 s is over the pin's 1 s");
      expect(refused.message).toContain("2 channels are over the pin's 1");
    });

    it("stores the same bytes once per workspace and charges the quota once", async () => {
      const a = sut.client("alice", "ws-dedup");
      const b = sut.client("bob", "ws-dedup");
      const bytes = randomBytes(200 * KiB);
      const first = await a.upload(uploadStream({}, bytes));
      const objectsBefore = await keysUnder(sut.store, "media/ws-dedup/");
      const second = await b.upload(uploadStream({}, bytes));
      expect(second.deduplicated).toBe(true);
      expect(second.ref).toEqual(first.ref);
      expect(await keysUnder(sut.store, "media/ws-dedup/")).toEqual(objectsBefore);
      expect(objectsBefore).toHaveLength(1);
      const usage = await a.getUsage({});
      expect(usage.workspaceUsedBytes).toBe(BigInt(bytes.length));
      expect(usage.workspaceObjectCount).toBe(1n);
      expect((await b.getUsage({})).userUsedBytes).toBe(0n);
      const elsewhere = await sut.client("alice", "ws-other").upload(uploadStream({}, bytes));
      expect(elsewhere.deduplicated).toBe(false);
      expect(elsewhere.ref?.id).not.toBe(first.ref?.id);
    });

    it("never lets another workspace see, fetch, share or delete an object", async () => {
      const owner = sut.client("alice", "ws-private");
      const stranger = sut.client("alice", "ws-stranger");
      const { ref } = await owner.upload(uploadStream({}, randomBytes(1000)));
      const id = ref!.id;
      for (const attempt of [
        () => stranger.stat({ refId: id }),
        () => downloadAll(stranger, id),
        () => stranger.presign({ refId: id }),
        () => stranger.delete({ refId: id }),
        () => stranger.stat({ refId: "../ws-private/x" }),
      ]) {
        expect((await codeOf(attempt())).code).toBe(Code.NotFound);
      }
      expect((await owner.stat({ refId: id })).ref?.id).toBe(id);
    });

    it("refuses bad uploads with precise codes and keeps nothing", async () => {
      const client = sut.client("carol", "ws-bad");
      const mismatch = await codeOf(client.upload(uploadStream({ mimeType: "image/jpeg" }, media.png)));
      expect(mismatch.code).toBe(Code.InvalidArgument);
      expect(mismatch.message).toContain('"image/jpeg"');
      expect(mismatch.message).toContain('"image/png"');

      const tooBig = await codeOf(client.upload(uploadStream({ mimeType: "image/png", sizeBytes: BigInt(2 * MiB) }, media.png)));
      expect(tooBig.code).toBe(Code.ResourceExhausted);
      expect(tooBig.message).toContain("limit for image uploads");

      const longer = await codeOf(client.upload(uploadStream({ sizeBytes: 1000n }, randomBytes(5000), 700)));
      expect(longer.code).toBe(Code.InvalidArgument);
      expect(longer.message).toContain("more than its declared 1000 bytes");

      const shorter = await codeOf(client.upload(uploadStream({ sizeBytes: 6000n }, randomBytes(5000))));
      expect(shorter.code).toBe(Code.InvalidArgument);

      const wrongDigest = await codeOf(client.upload(uploadStream({ sha256: "0".repeat(64) }, randomBytes(5000))));
      expect(wrongDigest.code).toBe(Code.InvalidArgument);
      expect(wrongDigest.message).toContain("sha256 mismatch");

      const growing = await codeOf(client.upload(uploadStream({}, Buffer.alloc(80 * KiB, "a"), 8 * KiB)));
      expect(growing.code).toBe(Code.ResourceExhausted);

      const pin = create(MediaConstraintsSchema, { acceptedMimeTypes: ["image/*"], maxWidth: 20 });
      const narrow = await codeOf(client.upload(uploadStream({ constraints: pin }, media.png)));
      expect(narrow.code).toBe(Code.InvalidArgument);
      expect(narrow.message).toContain("width 40 px is over the pin's 20");
      const wrongKind = await codeOf(client.upload(uploadStream({ constraints: pin }, media.wav)));
      expect(wrongKind.code).toBe(Code.InvalidArgument);

      const noHeader = await codeOf(
        client.upload(
          (async function* (): AsyncGenerator<UploadRequest> {
            yield { $typeName: "mentatlab.v1.UploadRequest", part: { case: "chunk", value: new Uint8Array(3) } };
          })(),
        ),
      );
      expect(noHeader.code).toBe(Code.InvalidArgument);

      const cut = media.faststartMp4.subarray(0, media.faststartMp4.length - 100);
      const truncated = await codeOf(client.upload(uploadStream({ mimeType: "video/mp4" }, cut)));
      expect(truncated.code).toBe(Code.InvalidArgument);
      expect(truncated.message).toContain("the video/mp4 content is not whole");

      expect(await keysUnder(sut.store, "media/ws-bad/")).toEqual([]);
      expect(await client.getUsage({})).toMatchObject({ userUsedBytes: 0n, workspaceUsedBytes: 0n, workspaceObjectCount: 0n });
    });

    it("refuses a header claiming more pixels than the server's ceiling, even with no pin limit", async () => {
      const client = sut.client("carol", "ws-ceiling");
      const huge = await codeOf(client.upload(uploadStream({}, pngClaiming(2 ** 31 - 1, 2 ** 31 - 1))));
      expect(huge.code).toBe(Code.InvalidArgument);
      expect(huge.message).toContain("2147483647 × 2147483647 px is over the 65535-px limit per side (STORAGE_MAX_DIMENSION_PX)");
      expect(huge.message).toContain("4611686014132420609 pixels per frame are over the limit of 268402689 (STORAGE_MAX_PIXELS)");
      expect(await keysUnder(sut.store, "media/ws-ceiling/")).toEqual([]);
      expect((await client.getUsage({})).userUsedBytes).toBe(0n);
    });

    it("says what is wrong with undecodable media without naming a server path or URL", async () => {
      const client = sut.client("carol", "ws-undecodable");
      const backendPlace = sut.config.backend.kind === "file" ? sut.config.backend.root : sut.config.backend.endpoint;
      for (const [mimeType, bytes] of [
        // ffprobe's own message for these names its input: "<path or URL>: Invalid data found when processing input".
        ["audio/wav", media.wav.subarray(0, 20)],
        ["audio/wav", media.wav.subarray(0, 40)],
        ["video/mp4", media.mp4.subarray(0, Math.floor(media.mp4.length / 3))],
      ] as const) {
        const refused = await codeOf(client.upload(uploadStream({ mimeType }, bytes)));
        expect(refused.code, mimeType).toBe(Code.InvalidArgument);
        expect(refused.message, mimeType).toMatch(new RegExp(`^the ${mimeType} content could not be decoded: \\w`));
        expect(refused.message, mimeType).not.toContain(backendPlace);
        expect(refused.message, mimeType).not.toContain(tmpdir());
        expect(refused.message, mimeType).not.toMatch(/(^|[\s:'"(])\/[^\s]+|https?:/);
      }
      expect(await keysUnder(sut.store, "media/ws-undecodable/")).toEqual([]);
    });

    it("resumes chunked uploads by offset, idempotently, and cleans up after completion", async () => {
      const client = sut.client("dave", "ws-resume");
      const bytes = randomBytes(700 * KiB);
      const created = await client.createUpload({ header: { mimeType: "application/x-blob", sizeBytes: BigInt(bytes.length) } });
      expect(created.committedOffset).toBe(0n);
      const id = created.uploadId;
      const put = (offset: number, end: number) => client.uploadChunk({ uploadId: id, offset: BigInt(offset), data: bytes.subarray(offset, end) });
      expect((await put(0, 300 * KiB)).committedOffset).toBe(BigInt(300 * KiB));
      expect((await put(0, 300 * KiB)).committedOffset).toBe(BigInt(300 * KiB));
      expect((await codeOf(put(400 * KiB, 500 * KiB))).code).toBe(Code.OutOfRange);
      // A dropped connection: ask where to continue, resend with overlap.
      const status = await client.getUploadStatus({ uploadId: id });
      expect(status.committedOffset).toBe(BigInt(300 * KiB));
      expect(status.sizeBytes).toBe(BigInt(bytes.length));
      expect((await put(200 * KiB, 500 * KiB)).committedOffset).toBe(BigInt(500 * KiB));
      expect((await codeOf(client.completeUpload({ uploadId: id }))).code).toBe(Code.FailedPrecondition);
      expect((await codeOf(client.uploadChunk({ uploadId: id, offset: BigInt(500 * KiB), data: randomBytes(300 * KiB) }))).code).toBe(Code.InvalidArgument);
      await put(500 * KiB, bytes.length);
      expect((await codeOf(sut.client("dave", "ws-elsewhere").getUploadStatus({ uploadId: id }))).code).toBe(Code.NotFound);
      const done = await client.completeUpload({ uploadId: id, sha256: sha256(bytes) });
      expect(done.ref).toMatchObject({ sha256: sha256(bytes), mimeType: "application/x-blob", sizeBytes: BigInt(bytes.length) });
      expect((await downloadAll(client, done.ref!.id)).bytes).toEqual(bytes);
      expect(await keysUnder(sut.store, `uploads/${id}/`)).toEqual([]);
      expect((await client.getUsage({})).userUsedBytes).toBe(BigInt(bytes.length));
      expect((await codeOf(client.getUploadStatus({ uploadId: id }))).code).toBe(Code.NotFound);
    });

    it("refuses a resumable upload early and discards a failed or aborted one", async () => {
      const client = sut.client("erin", "ws-resume-bad");
      const over = await codeOf(client.createUpload({ header: { mimeType: "image/png", sizeBytes: BigInt(2 * MiB) } }));
      expect(over.code).toBe(Code.ResourceExhausted);
      const typed = await client.createUpload({ header: { mimeType: "audio/wav", sizeBytes: BigInt(media.png.length) } });
      expect((await client.getUsage({})).userUsedBytes).toBe(BigInt(media.png.length));
      // A refused chunk ends the upload at once: nothing stays charged until the session would expire.
      const mismatch = await codeOf(client.uploadChunk({ uploadId: typed.uploadId, offset: 0n, data: media.png }));
      expect(mismatch.code).toBe(Code.InvalidArgument);
      expect(mismatch.message).toContain("was discarded, start a new one");
      expect(await client.getUsage({})).toMatchObject({ userUsedBytes: 0n, workspaceUsedBytes: 0n });
      expect((await codeOf(client.getUploadStatus({ uploadId: typed.uploadId }))).code).toBe(Code.NotFound);
      expect((await codeOf(client.uploadChunk({ uploadId: typed.uploadId, offset: 0n, data: media.png }))).code).toBe(Code.NotFound);
      expect(await keysUnder(sut.store, `uploads/${typed.uploadId}/`)).toEqual([]);

      // Undeclared type: once the first chunk shows an image, the image limit (1 MiB here) applies.
      const sniffed = await client.createUpload({ header: {} });
      const imageHead = Buffer.concat([media.png, randomBytes(600 * KiB)]);
      await client.uploadChunk({ uploadId: sniffed.uploadId, offset: 0n, data: imageHead });
      const pastLimit = await codeOf(client.uploadChunk({ uploadId: sniffed.uploadId, offset: BigInt(imageHead.length), data: randomBytes(600 * KiB) }));
      expect(pastLimit.code).toBe(Code.ResourceExhausted);
      expect(pastLimit.message).toContain("limit for image uploads");
      expect((await codeOf(client.getUploadStatus({ uploadId: sniffed.uploadId }))).code).toBe(Code.NotFound);
      expect(await keysUnder(sut.store, `uploads/${sniffed.uploadId}/`)).toEqual([]);

      const bytes = randomBytes(10 * KiB);
      const bad = await client.createUpload({ header: { sizeBytes: BigInt(bytes.length) } });
      await client.uploadChunk({ uploadId: bad.uploadId, offset: 0n, data: bytes });
      expect((await codeOf(client.completeUpload({ uploadId: bad.uploadId, sha256: "f".repeat(64) }))).code).toBe(Code.InvalidArgument);
      expect(await keysUnder(sut.store, `uploads/${bad.uploadId}/`)).toEqual([]);

      const aborted = await client.createUpload({ header: { sizeBytes: BigInt(bytes.length) } });
      await client.uploadChunk({ uploadId: aborted.uploadId, offset: 0n, data: bytes.subarray(0, 5000) });
      await client.abortUpload({ uploadId: aborted.uploadId });
      expect(await keysUnder(sut.store, `uploads/${aborted.uploadId}/`)).toEqual([]);
      expect(await client.getUsage({})).toMatchObject({ userUsedBytes: 0n, workspaceUsedBytes: 0n });
      expect(await keysUnder(sut.store, "media/ws-resume-bad/")).toEqual([]);
    });

    it("lists the workspace's objects newest first by page and type, without deleted ones", async () => {
      const client = sut.client("lena", "ws-list");
      const uploaded = [];
      for (const bytes of [randomBytes(1000), pngClaiming(10, 10), randomBytes(1000), pngClaiming(11, 11)]) {
        uploaded.push((await client.upload(uploadStream({}, bytes))).ref!);
        // Distinct creation times, so the expected order does not rest on ids.
        await new Promise((r) => setTimeout(r, 5));
      }
      const newestFirst = uploaded.map((ref) => ref.id).reverse();
      const first = await client.listMedia({ pageSize: 3 });
      const rest = await client.listMedia({ pageSize: 3, pageToken: first.nextPageToken });
      expect([...first.refs, ...rest.refs].map((ref) => ref.id)).toEqual(newestFirst);
      expect(rest.nextPageToken).toBe("");
      expect(first.refs[0]).toEqual(uploaded[3]);
      expect((await client.listMedia({ mimeTypePrefix: "image/" })).refs.map((ref) => ref.id)).toEqual([uploaded[3]!.id, uploaded[1]!.id]);
      await client.delete({ refId: uploaded[0]!.id });
      expect((await client.listMedia({})).refs.map((ref) => ref.id)).toEqual(newestFirst.slice(0, 3));
      expect((await sut.client("mallory", "ws-list-stranger").listMedia({})).refs).toEqual([]);
      const bad = await codeOf(client.listMedia({ pageToken: "not-a-token" }));
      expect(bad).toEqual({ code: Code.InvalidArgument, message: expect.stringContaining("pass next_page_token from the previous page") });
    });

    it("refunds, one sweep later, the charge of a ref that a crash left unregistered", async () => {
      const client = sut.client("olga", "ws-crash");
      const bytes = randomBytes(20 * KiB);
      const { ref } = await client.upload(uploadStream({}, bytes));
      const kept = (await client.upload(uploadStream({}, randomBytes(10 * KiB)))).ref!;
      // What a crash between charging the quota and registering the ref leaves: a charge, no ref.
      await forgetRef(sut, ref!.workspace, ref!.id);
      expect((await client.getUsage({})).workspaceUsedBytes).toBe(BigInt(30 * KiB));
      // The first sweep only notes it: an upload under way charges its ref a moment before registering it.
      expect((await sut.runtime.sweep()).orphanedCharges).toBe(0);
      expect((await sut.runtime.sweep()).orphanedCharges).toBe(1);
      expect(await client.getUsage({})).toMatchObject({ userUsedBytes: BigInt(10 * KiB), workspaceUsedBytes: BigInt(10 * KiB), workspaceObjectCount: 1n });
      expect((await client.stat({ refId: kept.id })).ref?.id).toBe(kept.id);
      expect((await sut.runtime.sweep()).orphanedCharges).toBe(0);
    });

    it("deletes an object, gives its space back and forgets it", async () => {
      const client = sut.client("frank", "ws-delete");
      const bytes = randomBytes(50 * KiB);
      const { ref } = await client.upload(uploadStream({}, bytes));
      expect((await client.getUsage({})).workspaceUsedBytes).toBe(BigInt(bytes.length));
      expect((await client.delete({ refId: ref!.id })).freedBytes).toBe(BigInt(bytes.length));
      expect(await client.getUsage({})).toMatchObject({ userUsedBytes: 0n, workspaceUsedBytes: 0n, workspaceObjectCount: 0n });
      expect((await codeOf(client.stat({ refId: ref!.id }))).code).toBe(Code.NotFound);
      expect((await codeOf(client.delete({ refId: ref!.id }))).code).toBe(Code.NotFound);
      expect(await keysUnder(sut.store, "media/ws-delete/")).toEqual([]);
      // The same bytes can be stored again after a delete.
      expect((await client.upload(uploadStream({}, bytes))).deduplicated).toBe(false);
    });

    it("enforces quotas under many parallel uploads and reports usage against the limit", async () => {
      const small = await startRuntime(backend, { STORAGE_USER_QUOTA_BYTES: String(1 * MiB), STORAGE_WORKSPACE_QUOTA_BYTES: String(10 * MiB) });
      try {
        const client = small.client("gina", "ws-quota");
        const size = 100 * KiB;
        const results = await Promise.all(
          Array.from({ length: 24 }, () => codeOf(client.upload(uploadStream({ sizeBytes: BigInt(size) }, randomBytes(size), 32 * KiB)))),
        );
        const ok = results.filter((r) => r.code === undefined).length;
        const refusals = results.filter((r) => r.code !== undefined);
        expect(ok).toBe(Math.floor(MiB / size));
        expect(refusals.every((r) => r.code === Code.ResourceExhausted && /uses \d+ of 1048576 bytes/.test(r.message))).toBe(true);
        const usage = await client.getUsage({});
        expect(usage).toMatchObject({
          userUsedBytes: BigInt(ok * size),
          userLimitBytes: BigInt(MiB),
          workspaceLimitBytes: BigInt(10 * MiB),
          workspaceObjectCount: BigInt(ok),
        });
        // Unknown sizes are reserved as they grow, and refused once they would cross the quota.
        const unsized = await codeOf(client.upload(uploadStream({}, randomBytes(200 * KiB))));
        expect(unsized.code).toBe(Code.ResourceExhausted);
        expect((await client.getUsage({})).userUsedBytes).toBe(BigInt(ok * size));
      } finally {
        await small.close();
      }
    });

    it("accepts uploads of unknown size up to the last byte of the quota", async () => {
      // Far less room than one 8 MiB reservation step: what is left bounds the step.
      const tight = await startRuntime(backend, { STORAGE_USER_QUOTA_BYTES: String(MiB), STORAGE_WORKSPACE_QUOTA_BYTES: String(10 * MiB) });
      try {
        const client = tight.client("hana", "ws-tight");
        await client.upload(uploadStream({ sizeBytes: BigInt(MiB - 1500) }, randomBytes(MiB - 1500)));
        const streamed = await client.upload(uploadStream({}, randomBytes(1000), 100));
        expect(streamed.ref?.sizeBytes).toBe(1000n);
        expect((await client.getUsage({})).userUsedBytes).toBe(BigInt(MiB - 500));

        const over = await codeOf(client.upload(uploadStream({}, randomBytes(501), 100)));
        expect(over.code).toBe(Code.ResourceExhausted);
        expect(over.message).toContain(`uses ${MiB - 500} of ${MiB} bytes`);
        expect((await client.getUsage({})).userUsedBytes).toBe(BigInt(MiB - 500));

        const resumable = await client.createUpload({ header: {} });
        const last = randomBytes(500);
        await client.uploadChunk({ uploadId: resumable.uploadId, offset: 0n, data: last.subarray(0, 200) });
        await client.uploadChunk({ uploadId: resumable.uploadId, offset: 200n, data: last.subarray(200) });
        const done = await client.completeUpload({ uploadId: resumable.uploadId, sha256: sha256(last) });
        expect(done.ref?.sizeBytes).toBe(500n);
        expect(await client.getUsage({})).toMatchObject({ userUsedBytes: BigInt(MiB), workspaceObjectCount: 3n });
        expect((await codeOf(client.upload(uploadStream({}, randomBytes(1))))).code).toBe(Code.ResourceExhausted);
      } finally {
        await tight.close();
      }
    });

    it("expires objects and abandoned uploads in the sweeper, giving quota back", async () => {
      const short = await startRuntime(backend, { STORAGE_TEMP_TTL_SECONDS: "1", STORAGE_UPLOAD_TTL_SECONDS: "1" });
      try {
        const client = short.client("hank", "ws-expiry");
        const { ref: temp } = await client.upload(uploadStream({ bucketClass: BucketClass.TEMP }, randomBytes(3000)));
        const { ref: kept } = await client.upload(uploadStream({}, randomBytes(3000)));
        const upload = await client.createUpload({ header: { sizeBytes: 4000n } });
        await client.uploadChunk({ uploadId: upload.uploadId, offset: 0n, data: randomBytes(1000) });
        expect((await client.getUsage({})).userUsedBytes).toBe(3000n + 3000n + 4000n);
        await new Promise((r) => setTimeout(r, 1100));
        expect((await codeOf(client.stat({ refId: temp!.id }))).code).toBe(Code.NotFound);
        expect((await client.listMedia({})).refs.map((ref) => ref.id)).toEqual([kept!.id]);
        expect(await short.runtime.sweep()).toEqual({
          expiredObjects: 1,
          droppedHolds: 0,
          abandonedUploads: 1,
          reclaimedLeases: 0,
          orphanedBlobs: 0,
          staleTemporaries: 0,
          orphanedCharges: 0,
        });
        expect(await keysUnder(short.store, "temp/")).toEqual([]);
        expect(await keysUnder(short.store, "uploads/")).toEqual([]);
        expect(await client.getUsage({})).toMatchObject({ userUsedBytes: 3000n, workspaceObjectCount: 1n });
        expect((await client.stat({ refId: kept!.id })).ref?.id).toBe(kept!.id);

        // An uploader that stalls (or whose replica died) holds its declared size until its lease lapses.
        const stalled = new AbortController();
        let sentHeader!: () => void;
        const headerSent = new Promise<void>((r) => (sentHeader = r));
        const stalledUpload = client
          .upload(
            (async function* (): AsyncGenerator<UploadRequest> {
              yield* uploadStream({ sizeBytes: 5000n }, randomBytes(100));
              sentHeader();
              await new Promise((r) => stalled.signal.addEventListener("abort", r));
            })(),
            { signal: stalled.signal },
          )
          .catch(() => undefined);
        await headerSent;
        await waitFor(async () => (await client.getUsage({})).userUsedBytes === 3000n + 5000n);
        expect((await short.runtime.sweep(Date.now() + 11 * 60_000)).reclaimedLeases).toBe(1);
        expect((await client.getUsage({})).userUsedBytes).toBe(3000n);
        stalled.abort();
        await stalledUpload;

        // Bytes a crash left unregistered go once past the grace period; registered ones stay.
        await short.store.write("media/ws-expiry/orphan", [randomBytes(10)]);
        expect((await short.runtime.sweep()).orphanedBlobs).toBe(0);
        expect((await short.runtime.sweep(Date.now() + 2 * 3_600_000)).orphanedBlobs).toBe(1);
        expect(await keysUnder(short.store, "media/ws-expiry/")).toHaveLength(1);
        expect((await downloadAll(client, kept!.id)).bytes).toHaveLength(3000);
      } finally {
        await short.close();
      }
    });

    it("serves presigned and bearer plain-HTTP GETs with Range, ETag and Cache-Control", async () => {
      const client = sut.client("ivy", "ws-http");
      const { ref } = await client.upload(uploadStream({ mimeType: "image/png" }, media.png));
      const { url, expiresAt } = await client.presign({ refId: ref!.id, ttl: { seconds: 600n } });
      expect(Number(expiresAt!.seconds) - Date.now() / 1000).toBeGreaterThan(590);
      const route = (method: string) => sut.runtime.routes.find((r) => r.method === method)!;
      const signal = new AbortController().signal;
      const get = (u: string, headers: Record<string, string> = {}, principal = undefined as ReturnType<typeof testPrincipal> | undefined) =>
        route("GET").handle(new Request(u, { headers }), { principal, signal });

      const whole = await get(url);
      expect(whole.status).toBe(200);
      expect(Buffer.from(await whole.arrayBuffer())).toEqual(media.png);
      expect(whole.headers.get("etag")).toBe(`"${ref!.sha256}"`);
      expect(whole.headers.get("content-type")).toBe("image/png");
      expect(whole.headers.get("cache-control")).toMatch(/^public, max-age=(59\d|600)$/);

      const part = await get(url, { range: "bytes=10-19" });
      expect(part.status).toBe(206);
      expect(part.headers.get("content-range")).toBe(`bytes 10-19/${media.png.length}`);
      expect(Buffer.from(await part.arrayBuffer())).toEqual(media.png.subarray(10, 20));
      const suffix = await get(url, { range: "bytes=-5" });
      expect(Buffer.from(await suffix.arrayBuffer())).toEqual(media.png.subarray(-5));
      expect((await get(url, { range: `bytes=${media.png.length}-` })).status).toBe(416);
      expect((await get(url, { "if-none-match": `"${ref!.sha256}"` })).status).toBe(304);

      const head = await route("HEAD").handle(new Request(url, { method: "HEAD" }), { principal: undefined, signal });
      expect(head.status).toBe(200);
      expect(head.headers.get("content-length")).toBe(String(media.png.length));
      expect(head.body).toBeNull();

      const tampered = url.replace(/sig=[^&]+/, "sig=AAAA");
      expect((await get(tampered)).status).toBe(403);
      const bare = url.split("?")[0]!;
      expect((await get(bare)).status).toBe(401);
      const bearer = await get(bare, {}, testPrincipal({ workspace: "ws-http" }));
      expect(bearer.status).toBe(200);
      expect(bearer.headers.get("cache-control")).toBe("private, max-age=3600");
      expect((await get(bare, {}, testPrincipal({ workspace: "ws-stranger" }))).status).toBe(404);
      const { ref: wav } = await client.upload(uploadStream({ mimeType: "audio/wav" }, media.wav));
      const wavUrl = (await client.presign({ refId: wav!.id, ttl: { seconds: 3600n } })).url;
      expect((await get(wavUrl)).headers.get("cache-control")).toBe("public, max-age=1800");
      // A link that dies sooner than the media's cache lifetime must not be cached past its expiry.
      const shortUrl = (await client.presign({ refId: wav!.id })).url;
      expect((await get(shortUrl)).headers.get("cache-control")).toMatch(/^public, max-age=(89\d|900)$/);
    });

    it("answers repeated ref lookups from the cache and counts the hit ratio", async () => {
      const client = sut.client("jack", "ws-cache");
      const { ref } = await client.upload(uploadStream({}, randomBytes(100)));
      const lookupsBefore = sut.runtime.metrics.referenceCacheLookups;
      const hitsBefore = sut.runtime.metrics.referenceCacheHits;
      for (let i = 0; i < 10; i++) await client.stat({ refId: ref!.id });
      expect(sut.runtime.metrics.referenceCacheLookups - lookupsBefore).toBe(10);
      expect(sut.runtime.metrics.referenceCacheHits - hitsBefore).toBeGreaterThanOrEqual(9);
      expect(sut.runtime.metrics.referenceCacheHitRatio).toBeGreaterThan(0);
      expect(sut.runtime.metrics.uploadCount).toBeGreaterThan(0);
    });
  });
}
