import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BucketClass, PinType } from "../../gen/mentatlab/v1/common_pb.js";
import { StorageService } from "../../gen/mentatlab/v1/storage_pb.js";
import { StreamService } from "../../gen/mentatlab/v1/stream_pb.js";
import { startEmbedded } from "../../services/mesh/embedded.js";
import { httpPathsOwned, httpPostPathsOwned } from "../../services/mesh/topology.js";
import { startDistributedMesh } from "../e2e/support/distributed-mesh.js";
import { callers, type Caller, keyEntries, keys } from "./support/callers.js";

/** Who each route lets through: the roles holding its RPC's permission (the roles as auth-matrix.test.ts writes them out). */
interface RouteCase {
  readonly method: "GET" | "HEAD" | "POST";
  /** A JSON body to send (POST). */
  readonly body?: unknown;
  readonly prefix: string;
  /** The RPC serving the same data, whose permission the route must require. */
  readonly rpc: string;
  /** That RPC's permission, or "public" for a route open to every caller. */
  readonly permission: string;
  readonly allowed: ReadonlySet<Caller>;
  /** The path to request, known once the fixtures exist. */
  path(): string;
  /** What an allowed caller must see, beyond a 2xx status. */
  check(response: Response): Promise<void>;
}

const objectText = "bytes only storage:download may read\n";
let refId: string;
let streamId: string;

const routes: readonly RouteCase[] = [
  {
    method: "GET",
    prefix: "/media/",
    rpc: "StorageService/Download",
    permission: "storage:download",
    allowed: new Set(["consumer", "admin"]),
    path: () => `/media/acme/${refId}`,
    check: async (response) => expect(await response.text()).toBe(objectText),
  },
  {
    method: "HEAD",
    prefix: "/media/",
    rpc: "StorageService/Download",
    permission: "storage:download",
    allowed: new Set(["consumer", "admin"]),
    path: () => `/media/acme/${refId}`,
    check: async (response) => expect(response.headers.get("content-length")).toBe(String(objectText.length)),
  },
  {
    method: "GET",
    prefix: "/streams/",
    rpc: "StreamService/Subscribe",
    permission: "stream:subscribe",
    allowed: new Set(["consumer", "admin"]),
    path: () => `/streams/${streamId}/events`,
    check: async (response) => expect(await response.text()).toContain("event: stream_data\ndata: a live token\n"),
  },
  {
    method: "POST",
    prefix: "/streams/",
    rpc: "StreamService/InitStream",
    permission: "stream:create",
    allowed: new Set(["producer", "admin"]),
    path: () => "/streams/init",
    body: { payload_type: "PIN_TYPE_TEXT" },
    check: async (response) => expect(((await response.json()) as { ws_url: string }).ws_url).toMatch(/\/streams\/st_\w+\/ws\?ticket=/),
  },
  {
    // Scraped like health checks, without credentials (README: restrict it by network policy).
    method: "GET",
    prefix: "/metrics",
    rpc: "none (Prometheus scrape)",
    permission: "public",
    allowed: new Set(callers),
    path: () => "/metrics",
    // Each process exports its own metrics: the gateway's are not the storage process's.
    check: async (response) => {
      expect(response.headers.get("content-type")).toContain("text/plain; version=0.0.4");
      expect(await response.text()).toContain("# HELP target_info");
    },
  },
];

/** Where the routes are served: the embedded mesh itself, or the distributed gateway proxying them. */
const topologies: readonly { name: string; start(): Promise<{ url: string; close(): Promise<void> }> }[] = [
  {
    name: "embedded mesh",
    async start() {
      const dataDir = await mkdtemp(join(tmpdir(), "http-route-matrix-"));
      const mesh = await startEmbedded({ port: 0, dataDir, env: { PATH: process.env.PATH, MENTATLAB_API_KEYS: keyEntries.join(",") } });
      return {
        url: mesh.url,
        async close() {
          await mesh.close();
          await rm(dataDir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: "distributed gateway",
    start: () => startDistributedMesh("key-dist-admin-0123456789", { moreApiKeys: keyEntries }),
  },
];

/** An object and an ended stream in workspace acme, made by the producer, for the routes to serve. */
async function makeFixtures(url: string): Promise<void> {
  const transport = createConnectTransport({ baseUrl: url, httpVersion: "2" });
  const asProducer = { headers: { authorization: `Bearer ${keys.producer}` } };
  const bytes = new TextEncoder().encode(objectText);
  const uploaded = await createClient(StorageService, transport).upload(
    (async function* () {
      yield { part: { case: "header" as const, value: { mimeType: "text/plain", sizeBytes: BigInt(bytes.length), bucketClass: BucketClass.TEMP } } };
      yield { part: { case: "chunk" as const, value: bytes } };
    })(),
    asProducer,
  );
  refId = uploaded.ref?.id ?? "";
  const streams = createClient(StreamService, transport);
  const init = await streams.initStream({ payloadType: PinType.TEXT, mimeType: "text/plain" }, asProducer);
  streamId = init.stream?.ref?.streamId ?? "";
  await streams.publishBatch({ streamId, payloads: [{ data: new TextEncoder().encode("a live token") }] }, asProducer);
  await streams.closeStream({ streamId }, asProducer);
}

async function request(url: string, route: RouteCase, caller: Caller): Promise<Response> {
  const headers: Record<string, string> = caller === "none" ? {} : { authorization: `Bearer ${keys[caller]}` };
  const body = route.body === undefined ? {} : { body: JSON.stringify(route.body) };
  return fetch(`${url}${route.path()}`, { method: route.method, headers, signal: AbortSignal.timeout(5_000), ...body });
}

// The web UI's files at `/` are public by nature and serve no workspace data, so they have no row.
it("the matrix covers every plain-HTTP path the services and the metrics endpoint serve", () => {
  const served = new Set([...Object.values(httpPathsOwned).flat(), ...Object.values(httpPostPathsOwned).flat(), "/metrics"]);
  expect(new Set(routes.map((route) => route.prefix))).toEqual(served);
});

describe.each(topologies)("every plain-HTTP route × every caller: $name", (topology) => {
  let mesh: { url: string; close(): Promise<void> };
  beforeAll(async () => {
    mesh = await topology.start();
    await makeFixtures(mesh.url);
  }, 60_000);
  afterAll(async () => {
    await mesh?.close();
  });

  for (const route of routes) {
    describe(`${route.method} ${route.prefix} (as ${route.rpc}: ${route.permission})`, () => {
      for (const caller of callers) {
        const allowed = route.allowed.has(caller);
        const refusal = caller === "none" ? "401" : `403 naming "${route.permission}"`;
        it(`${caller} → ${allowed ? "served" : refusal}`, async () => {
          const response = await request(mesh.url, route, caller);
          if (allowed) {
            expect(response.status).toBe(200);
            await route.check(response);
            return;
          }
          const body = await response.text();
          if (caller === "none") {
            expect(response.status).toBe(401);
            return;
          }
          expect(response.status).toBe(403);
          // HEAD has no body to carry the reason; GET and POST say which permission is missing.
          // (The SSE view answers JSON, so the quotes around the permission arrive escaped.)
          if (route.method !== "HEAD") expect(body.replace(/[\\"]/g, "")).toContain(`lacks permission ${route.permission} required by`);
        });
      }
    });
  }

  it("a producer's key gets no byte of an object through the media route, while Download refuses it too", async () => {
    const media = routes[0]!;
    const response = await request(mesh.url, media, "producer");
    expect(await response.text()).not.toContain(objectText.trim());
    const transport = createConnectTransport({ baseUrl: mesh.url, httpVersion: "2" });
    const download = createClient(StorageService, transport).download({ refId }, { headers: { authorization: `Bearer ${keys.producer}` } });
    await expect(
      (async () => {
        for await (const _ of download) break;
      })(),
    ).rejects.toMatchObject({ code: Code.PermissionDenied });
  });
});
