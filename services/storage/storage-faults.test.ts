import { existsSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Code } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import type { UploadRequest } from "../../gen/mentatlab/v1/storage_pb.js";
import { testPrincipal } from "../../test/support/in-memory.js";
import { makeTempDir, removeTempDir, spawnManaged, startS3, waitUntilReady, type S3Server } from "../../test/harness/index.js";
import { codeOf, downloadAll, type RuntimeUnderTest, startRuntime, uploadStream } from "./storage-service.conformance.js";

const MiB = 1024 * 1024;
const fileBlobStoreModule = fileURLToPath(new URL("./file-blob-store.ts", import.meta.url));

let sut: RuntimeUnderTest | undefined;
let s3: S3Server | undefined;
let dir: string | undefined;
afterEach(async () => {
  await sut?.close();
  await s3?.stop();
  if (dir) removeTempDir(dir);
  sut = s3 = dir = undefined;
});

/** An upload header then `chunks` 1 MiB chunks, calling `afterChunk(i)` once each chunk is taken. */
async function* slowUpload(chunks: number, afterChunk: (i: number) => Promise<void>): AsyncGenerator<UploadRequest> {
  const { value: header } = await uploadStream({ mimeType: "application/octet-stream" }, new Uint8Array(0)).next();
  if (header) yield header;
  for (let i = 0; i < chunks; i++) {
    yield { $typeName: "mentatlab.v1.UploadRequest", part: { case: "chunk", value: new Uint8Array(MiB).fill(i) } };
    await afterChunk(i);
  }
}

/** A storage runtime on a fresh fauxqs S3 server (`s3`, so the test can kill or freeze it). */
async function startRuntimeOnS3(extra: Record<string, string> = {}): Promise<{ server: S3Server; runtime: RuntimeUnderTest }> {
  const server = (s3 = await startS3());
  const env = {
    S3_ENDPOINT: server.endpoint,
    S3_BUCKET: server.bucket,
    AWS_ACCESS_KEY_ID: server.accessKeyId,
    AWS_SECRET_ACCESS_KEY: server.secretAccessKey,
    ...extra,
  };
  const runtime = (sut = await startRuntime({ freshEnv: async () => env, dispose: async () => {} }, { STORAGE_MAX_OTHER_BYTES: String(64 * MiB) }));
  return { server, runtime };
}

function expectObjectStorageUnavailable(refusal: { code: Code | undefined; message: string }, secretPlace: string): void {
  expect(refusal.code).toBe(Code.Unavailable);
  expect(refusal.message).toContain("object storage is unavailable");
  expect(refusal.message).not.toContain(secretPlace);
}

describe("object storage faults", () => {
  it("answers UNAVAILABLE, naming object storage, when the S3 server is killed mid-upload", async () => {
    const { server, runtime } = await startRuntimeOnS3();
    const client = runtime.client("sam", "ws-s3-killed");
    const { ref: storedBefore } = await client.upload(uploadStream({}, new TextEncoder().encode("stored before the crash\n")));
    let killedAt = 0;
    // Past the first 5 MiB part, so the multipart upload is under way when the server dies.
    const upload = client.upload(
      slowUpload(24, async (i) => {
        if (i === 7) {
          await server.kill();
          killedAt = Date.now();
        }
      }),
    );
    const refusal = await codeOf(upload);
    expect(Date.now() - killedAt).toBeLessThan(15_000);
    expectObjectStorageUnavailable(refusal, server.endpoint);
    expectObjectStorageUnavailable(await codeOf(downloadAll(client, storedBefore!.id)), server.endpoint);
    expect(Date.now() - killedAt).toBeLessThan(20_000);
    // Only the object stored before the crash is charged: the interrupted upload gave its reservation back.
    expect(await client.getUsage({})).toMatchObject({ userUsedBytes: storedBefore!.sizeBytes, workspaceObjectCount: 1n });
  });

  it("ends a Download with UNAVAILABLE, not a silent truncation, when the S3 server dies mid-stream", async () => {
    const { server, runtime } = await startRuntimeOnS3();
    const client = runtime.client("dora", "ws-s3-died-reading");
    const { ref } = await client.upload(slowUpload(48, async () => {}));
    let received = 0;
    const reading = (async () => {
      for await (const message of client.download({ refId: ref!.id, chunkBytes: 64 * 1024 })) {
        if (message.part.case !== "chunk") continue;
        received += message.part.value.data.byteLength;
        // A slow reader: the server holds the S3 response open, far from its end, when S3 dies.
        if (received === 64 * 1024) await server.kill();
        await new Promise((r) => setTimeout(r, 1));
      }
    })();
    expectObjectStorageUnavailable(await codeOf(reading), server.endpoint);
    expect(received).toBeLessThan(48 * MiB);
  });

  it("answers UNAVAILABLE in bounded time when the S3 server hangs, mid-upload and on download", async () => {
    const { server, runtime } = await startRuntimeOnS3({ S3_REQUEST_TIMEOUT_MS: "1000" });
    const client = runtime.client("hal", "ws-s3-hung");
    const { ref: storedBefore } = await client.upload(uploadStream({}, new TextEncoder().encode("stored before the hang\n")));
    let frozenAt = 0;
    try {
      const upload = codeOf(
        client.upload(
          slowUpload(24, async (i) => {
            if (i === 7) {
              server.freeze();
              frozenAt = Date.now();
            }
          }),
        ),
      );
      expectObjectStorageUnavailable(await upload, server.endpoint);
      // Three attempts of at most a second each, the SDK's retries and backoff, with room for a loaded machine.
      expect(Date.now() - frozenAt).toBeLessThan(15_000);
      const downloadStarted = Date.now();
      expectObjectStorageUnavailable(await codeOf(downloadAll(client, storedBefore!.id)), server.endpoint);
      expect(Date.now() - downloadStarted).toBeLessThan(15_000);
    } finally {
      server.thaw();
    }
  });

  it("answers UNAVAILABLE when the storage root is gone, and does not recreate it", async () => {
    dir = makeTempDir("storage-root-gone-");
    const root = join(dir, "storage");
    sut = await startRuntime({ freshEnv: async () => ({ STORAGE_DIR: root }), dispose: async () => {} });
    const client = sut.client("rita", "ws-root-gone");
    const { ref } = await client.upload(uploadStream({}, new TextEncoder().encode("stored before the fault\n")));
    rmSync(root, { recursive: true, force: true });

    const started = Date.now();
    expectObjectStorageUnavailable(await codeOf(client.upload(uploadStream({}, new TextEncoder().encode("after\n")))), root);
    expectObjectStorageUnavailable(await codeOf(downloadAll(client, ref!.id)), root);
    const media = sut.runtime.routes.find((route) => route.method === "GET")!;
    const viaHttp = await media.handle(new Request(`http://127.0.0.1/media/ws-root-gone/${ref!.id}`), {
      principal: testPrincipal({ user: "rita", workspace: "ws-root-gone" }),
      signal: AbortSignal.timeout(5_000),
    });
    expect(viaHttp.status).toBe(503);
    expect(await viaHttp.text()).toContain("object storage is unavailable");
    expect(Date.now() - started).toBeLessThan(5_000);
    // An empty store in its place would quietly lose every object; the volume has to come back instead.
    expect(existsSync(root)).toBe(false);
    expect((await client.getUsage({})).userUsedBytes).toBe(ref!.sizeBytes);
  });

  it("sweeps the temp file a killed write left in .incoming, once it is past the grace period", async () => {
    dir = makeTempDir("storage-incoming-");
    const root = join(dir, "storage");
    const incoming = join(root, ".incoming");
    // A process writing through the file store, killed mid-write as a crash or an OOM kill would.
    const writer = spawnManaged(process.execPath, [
      "--import",
      "tsx",
      "--input-type=module",
      "-e",
      `import { FileBlobStore } from ${JSON.stringify(fileBlobStoreModule)};
       const store = new FileBlobStore(${JSON.stringify(root)});
       await store.write("media/ws/never-finished", (async function* () {
         for (;;) { yield new Uint8Array(64 * 1024); await new Promise((r) => setTimeout(r, 20)); }
       })());`,
    ]);
    await waitUntilReady("an interrupted writer", writer, async () => existsSync(incoming) && readdirSync(incoming).length > 0);
    await writer.terminate("SIGKILL");
    expect(readdirSync(incoming)).toHaveLength(1);

    sut = await startRuntime({ freshEnv: async () => ({ STORAGE_DIR: root }), dispose: async () => {} });
    expect((await sut.runtime.sweep()).staleTemporaries).toBe(0);
    expect(readdirSync(incoming)).toHaveLength(1);
    expect((await sut.runtime.sweep(Date.now() + 2 * 3_600_000)).staleTemporaries).toBe(1);
    expect(readdirSync(incoming)).toEqual([]);
  });
});
