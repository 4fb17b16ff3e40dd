import { randomBytes } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StorageService } from "../../gen/mentatlab/v1/storage_pb.js";
import { attachPrincipal, testPrincipal } from "../../test/support/in-memory.js";
import { makeTempDir, removeTempDir } from "../../test/harness/index.js";
import { type RunningServer, startServer } from "../server/server.js";
import type { BlobStore, ByteRange, ByteSource } from "./blob-store.js";
import { storageConfigFromEnv } from "./config.js";
import { FileBlobStore } from "./file-blob-store.js";
import { createStorage, type StorageRuntime } from "./index.js";
import { uploadStream } from "./storage-service.conformance.js";

/** A file store that counts the bytes its read streams have handed out. */
class CountingStore extends FileBlobStore {
  bytesRead = 0;
  override async read(key: string, range?: ByteRange): Promise<ByteSource | undefined> {
    const body = await super.read(key, range);
    if (!body) return undefined;
    const self = this;
    return (async function* () {
      for await (const chunk of body) {
        self.bytesRead += chunk.byteLength;
        yield chunk;
      }
    })();
  }
}

describe("StorageService on the real one-port server", () => {
  const MiB = 1024 * 1024;
  let dir: string;
  let store: CountingStore;
  let runtime: StorageRuntime;
  let server: RunningServer;
  beforeAll(async () => {
    dir = makeTempDir("backpressure");
    const config = storageConfigFromEnv({ MENTATLAB_PRESIGN_SECRET: "backpressure-secret-123", STORAGE_SWEEP_INTERVAL_MS: "0" }, dir);
    store = new CountingStore(`${dir}/storage`);
    runtime = await createStorage(config, { blobStore: store as BlobStore });
    const principal = testPrincipal();
    server = await startServer({
      port: 0,
      routes: (router) => router.service(StorageService, runtime.impl),
      interceptors: [attachPrincipal(principal)],
      uncompressedServices: [StorageService.typeName],
      httpRoutes: runtime.routes,
      authenticateHttp: async (request) => (request.headers.get("authorization") === "Bearer test-key" ? principal : undefined),
    });
  });
  afterAll(async () => {
    await server?.close();
    await runtime?.close();
    removeTempDir(dir);
  });

  it("reads from storage only as fast as a slow client consumes", async () => {
    const client = createClient(StorageService, createGrpcTransport({ baseUrl: server.url }));
    const { ref } = await client.upload(uploadStream({}, randomBytes(32 * MiB), 1 * MiB));
    store.bytesRead = 0;
    const stream = client.download({ refId: ref!.id })[Symbol.asyncIterator]();
    await stream.next();
    await stream.next();
    await new Promise((r) => setTimeout(r, 500));
    // The server may run ahead by the HTTP/2 windows (4 MiB stream, 32 MiB connection) and socket buffers, never the object.
    expect(store.bytesRead).toBeLessThan(8 * MiB);
    let received = 64 * 1024;
    for (;;) {
      const next = await stream.next();
      if (next.done) break;
      if (next.value.part.case === "chunk") received += next.value.part.value.data.byteLength;
    }
    expect(received).toBe(32 * MiB);
  });

  it("serves media over plain HTTP/1.1 with presigned links, bearer keys and ranges", async () => {
    const client = createClient(StorageService, createGrpcTransport({ baseUrl: server.url }));
    const bytes = randomBytes(3 * MiB);
    const { ref } = await client.upload(uploadStream({}, bytes, MiB));
    const { url } = await client.presign({ refId: ref!.id });
    // The runtime's public URL is the configured default; this server got a random port.
    const link = new URL(url);
    const local = `${server.url}${link.pathname}${link.search}`;
    const whole = await fetch(local);
    expect(whole.status).toBe(200);
    expect(Buffer.from(await whole.arrayBuffer()).equals(bytes)).toBe(true);
    const ranged = await fetch(local, { headers: { range: "bytes=1048576-1048600" } });
    expect(ranged.status).toBe(206);
    expect(Buffer.from(await ranged.arrayBuffer())).toEqual(bytes.subarray(1048576, 1048601));
    const bare = `${server.url}${link.pathname}`;
    expect((await fetch(bare)).status).toBe(401);
    const bearer = await fetch(bare, { method: "HEAD", headers: { authorization: "Bearer test-key" } });
    expect(bearer.status).toBe(200);
    expect(bearer.headers.get("etag")).toBe(`"${ref!.sha256}"`);
    expect(bearer.headers.get("content-length")).toBe(String(bytes.length));
  });

  it("takes a presigned link only in the one spelling it was issued in", async () => {
    const client = createClient(StorageService, createGrpcTransport({ baseUrl: server.url }));
    const { ref } = await client.upload(uploadStream({}, new TextEncoder().encode("shared once\n")));
    const link = new URL((await client.presign({ refId: ref!.id })).url);
    const expires = link.searchParams.get("expires")!;
    const sig = link.searchParams.get("sig")!;
    const [, , workspace, refId] = link.pathname.split("/");
    const at = (path: string, query: string) => fetch(`${server.url}${path}?${query}`);
    const issuedPath = `/media/${workspace}/${refId}`;
    expect((await at(issuedPath, `expires=${expires}&sig=${sig}`)).status).toBe(200);

    const expirySpellings = {
      hex: `0x${Number(expires).toString(16)}`,
      exponent: `${Number(expires) / 1e9}e9`,
      "trailing .0": `${expires}.0`,
      "leading space": `%20${expires}`,
      "leading zero": `0${expires}`,
      "plus sign": `%2B${expires}`,
    };
    for (const [name, spelling] of Object.entries(expirySpellings)) {
      expect(Number(decodeURIComponent(spelling).trim()), name).toBe(Number(expires));
      expect((await at(issuedPath, `expires=${spelling}&sig=${sig}`)).status, name).toBe(403);
    }
    const doubled = await at(issuedPath, `expires=${expires}&sig=${sig}&expires=${expires}`);
    expect(doubled.status).toBe(403);

    // Each names the same workspace "ws-test", with needless or lower-case escapes.
    for (const encoded of ["%77s-test", "ws%2Dtest", "ws%2dtest"]) {
      expect(decodeURIComponent(encoded)).toBe(workspace);
      expect((await at(`/media/${encoded}/${refId}`, `expires=${expires}&sig=${sig}`)).status, encoded).toBe(404);
    }
  });
});
