import { create } from "@bufbuild/protobuf";
import { createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect as http2Connect } from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.js";
import { AgentRegistryService } from "../../gen/mentatlab/v1/registry_pb.js";
import { StorageService, UploadRequestSchema } from "../../gen/mentatlab/v1/storage_pb.js";
import { openServices, startServer, type RunningServer } from "./server.js";
import { mountTransportFixture } from "./testing.js";

let server: RunningServer;
let webDir: string;
/** Resolves when the endless route sees its signal abort. */
let endlessAborted: Promise<void> = Promise.resolve();

beforeAll(async () => {
  webDir = await mkdtemp(join(tmpdir(), "server-web-"));
  await writeFile(join(webDir, "index.html"), "<!doctype html><title>ui</title>");
  await writeFile(join(webDir, "app.js"), "console.log(1)");
  server = await startServer({
    port: 0,
    routes: mountTransportFixture,
    staticDir: webDir,
    httpRoutes: [
      {
        method: "GET",
        pathPrefix: "/endless",
        handle: async (_request, { signal }) => {
          endlessAborted = new Promise((resolve) => signal.addEventListener("abort", () => resolve()));
          const encoder = new TextEncoder();
          const body = new ReadableStream<Uint8Array>({
            async pull(controller) {
              await new Promise((resolve) => setTimeout(resolve, 10));
              controller.enqueue(encoder.encode("data: tick\n\n"));
            },
          });
          return new Response(body, { headers: { "content-type": "text/event-stream" } });
        },
      },
      {
        method: "POST",
        pathPrefix: "/echo/",
        handle: async (request, { principal }) =>
          new Response(request.body, { headers: { "x-path": new URL(request.url).pathname, "x-user": principal?.user ?? "" } }),
      },
    ],
    authenticateHttp: async (request) =>
      request.headers.get("authorization") === "Bearer k" ? { user: "bob", workspace: "w", roles: [], permissions: new Set() } : undefined,
  });
});
afterAll(async () => {
  await server.close();
  await rm(webDir, { recursive: true, force: true });
});

type MakeTransport = (baseUrl: string) => Transport;

const http2Transports: Record<string, MakeTransport> = {
  "gRPC over h2c": (baseUrl) => createGrpcTransport({ baseUrl }),
  "gRPC-web over HTTP/2": (baseUrl) => createGrpcWebTransport({ baseUrl, httpVersion: "2" }),
  "Connect JSON over HTTP/2": (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "2" }),
  "Connect binary over HTTP/2": (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true }),
};
const http1Transports: Record<string, MakeTransport> = {
  "gRPC-web over HTTP/1.1": (baseUrl) => createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }),
  "Connect JSON over HTTP/1.1": (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "1.1" }),
  "Connect binary over HTTP/1.1": (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: true }),
};

describe.each(Object.entries({ ...http2Transports, ...http1Transports }))("%s", (_name, make) => {
  it("answers a unary RPC of ours", async () => {
    const registry = createClient(AgentRegistryService, make(server.url));
    const empty = await registry.validateManifest({ source: { source: { case: "text", value: "" } } });
    expect(empty.valid).toBe(false);
    expect(empty.violations.map((v) => v.rule)).toEqual(["fixture.empty"]);
    const echoed = await registry.validateManifest({ source: { source: { case: "text", value: "id: x" } } });
    expect(echoed.violations[0]?.message).toBe("fixture echoes: id: x");
  });

  it("answers Health.Check and streams Health.Watch", async () => {
    const health = createClient(Health, make(server.url));
    expect((await health.check({ service: "" })).status).toBe(Status.SERVING);
    expect((await health.check({ service: StorageService.typeName })).status).toBe(Status.SERVING);
    const controller = new AbortController();
    const seen: Status[] = [];
    server.health.set("fixture.watch", Status.SERVING);
    for await (const response of health.watch({ service: "fixture.watch" }, { signal: controller.signal })) {
      seen.push(response.status);
      if (seen.length === 1) server.health.set("fixture.watch", Status.NOT_SERVING);
      else break;
    }
    // Leaving the loop does not cancel the call in connect-node: abort, as a real client must.
    controller.abort();
    expect(seen).toEqual([Status.SERVING, Status.NOT_SERVING]);
  });

  it("streams a server-streaming RPC of ours", async () => {
    const storage = createClient(StorageService, make(server.url));
    let bytes = 0;
    let chunks = 0;
    for await (const response of storage.download({ refId: "zeros", length: 300_000n, chunkBytes: 65_536 })) {
      if (response.part.case === "chunk") bytes += response.part.value.data.length;
      chunks++;
    }
    expect({ bytes, chunks }).toEqual({ bytes: 300_000, chunks: 5 });
  });
});

// Client streaming needs a full-duplex connection: HTTP/2 only, as the issue asks.
describe.each(Object.entries(http2Transports))("%s", (_name, make) => {
  it("accepts a client-streaming RPC of ours", async () => {
    const storage = createClient(StorageService, make(server.url));
    async function* parts() {
      yield create(UploadRequestSchema, { part: { case: "header", value: { filename: "a.bin" } } });
      yield create(UploadRequestSchema, { part: { case: "chunk", value: new TextEncoder().encode("hello ") } });
      yield create(UploadRequestSchema, { part: { case: "chunk", value: new TextEncoder().encode("world") } });
    }
    const response = await storage.upload(parts());
    expect(response.ref?.sizeBytes).toBe(11n);
    expect(response.ref?.filename).toBe("a.bin");
    // sha256("hello world")
    expect(response.ref?.sha256).toBe("b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9");
  });
});

describe("health", () => {
  it("answers NOT_FOUND for an unknown service and lists every mounted one", async () => {
    const health = createClient(Health, createGrpcTransport({ baseUrl: server.url }));
    await expect(health.check({ service: "no.such.Service" })).rejects.toMatchObject({ code: 5 });
    const listed = await health.list({});
    expect(Object.keys(listed.statuses)).toEqual(expect.arrayContaining(["", AgentRegistryService.typeName, StorageService.typeName, Health.typeName]));
  });

  it("exports health and reflection as the open services", () => {
    expect([...openServices].sort()).toEqual(["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]);
  });
});

describe("plain HTTP on the same port", () => {
  it("streams a route's request and response bodies over HTTP/1.1 with the caller resolved", async () => {
    const response = await fetch(`${server.url}/echo/a/b`, {
      method: "POST",
      body: "payload",
      headers: { authorization: "Bearer k" },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("x-path")).toBe("/echo/a/b");
    expect(response.headers.get("x-user")).toBe("bob");
    expect(await response.text()).toBe("payload");
  });

  it("serves a route over HTTP/2 (prior knowledge)", async () => {
    const session = http2Connect(server.url);
    try {
      const stream = session.request({ ":method": "POST", ":path": "/echo/h2" });
      stream.end("over h2");
      const [headers, body] = await Promise.all([
        new Promise<Record<string, unknown>>((resolve) => stream.once("response", resolve)),
        (async () => {
          const chunks: Buffer[] = [];
          for await (const chunk of stream) chunks.push(chunk as Buffer);
          return Buffer.concat(chunks).toString();
        })(),
      ]);
      expect(headers[":status"]).toBe(200);
      expect(headers["x-path"]).toBe("/echo/h2");
      // One 64 KiB media chunk must fit the stream window (Node's default is 65 535 bytes).
      expect(session.remoteSettings.initialWindowSize).toBe(4 * 1024 * 1024);
      expect(body).toBe("over h2");
    } finally {
      session.close();
    }
  });

  it("aborts a route's signal when the client goes away mid-stream", async () => {
    const controller = new AbortController();
    const response = await fetch(`${server.url}/endless`, { signal: controller.signal });
    const reader = response.body?.getReader();
    const first = await reader?.read();
    expect(new TextDecoder().decode(first?.value)).toContain("data: tick");
    controller.abort();
    await expect(endlessAborted).resolves.toBeUndefined();
  });

  it("answers 405 naming the allowed method and 404 for unknown RPC paths", async () => {
    const wrongMethod = await fetch(`${server.url}/echo/x`, { method: "DELETE" });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get("allow")).toBe("POST");
    const unknownRpc = await fetch(`${server.url}/mentatlab.v1.Nope/Call`, { method: "POST", body: "{}" });
    expect(unknownRpc.status).toBe(404);
    const client = createClient(AgentRegistryService, createGrpcTransport({ baseUrl: `${server.url}/nope` }));
    await expect(client.validateManifest({})).rejects.toMatchObject({ code: 12 });
  });

  it("serves the web UI's files with their content types and refuses paths outside its folder", async () => {
    const index = await fetch(`${server.url}/`);
    expect(index.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(await index.text()).toContain("<title>ui</title>");
    const script = await fetch(`${server.url}/app.js`);
    expect(script.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    const head = await fetch(`${server.url}/app.js`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe("14");
    expect((await fetch(`${server.url}/%2e%2e/%2e%2e/etc/passwd`)).status).toBe(404);
    expect((await fetch(`${server.url}/missing.css`)).status).toBe(404);
    expect((await fetch(`${server.url}/app.js`, { method: "PUT", body: "x" })).status).toBe(404);
  });
});
