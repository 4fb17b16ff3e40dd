import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentRegistryService } from "../../gen/mentatlab/v1/registry_pb.js";
import { startServer, type RunningServer } from "./server.js";
import { mountTransportFixture } from "./testing.js";

let server: RunningServer;
let bodiesSeen = 0;
beforeAll(async () => {
  server = await startServer({
    port: 0,
    routes: mountTransportFixture,
    readMaxBytes: 4_096,
    writeMaxBytes: 8_192,
    maxRequestBodyBytes: 1_000,
    httpRoutes: [
      {
        method: "POST",
        pathPrefix: "/upload",
        handle: async (request) => {
          const text = await request.text();
          bodiesSeen++;
          return new Response(`got ${text.length}`);
        },
      },
    ],
  });
});
afterAll(() => server.close());

const manifest = (length: number) => ({ source: { source: { case: "text" as const, value: "x".repeat(length) } } });

describe("message size limits", () => {
  it.each([
    ["gRPC", () => createGrpcTransport({ baseUrl: server.url })],
    ["Connect", () => createConnectTransport({ baseUrl: server.url, httpVersion: "1.1" })],
  ])("over %s: refuses a request message over readMaxBytes with RESOURCE_EXHAUSTED", async (_name, make) => {
    const registry = createClient(AgentRegistryService, make());
    await expect(registry.validateManifest(manifest(2_000))).resolves.toMatchObject({ valid: false });
    const error = await registry.validateManifest(manifest(5_000)).catch((e: unknown) => ConnectError.from(e));
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.ResourceExhausted);
  });

  it("refuses to send a response message over writeMaxBytes with RESOURCE_EXHAUSTED", async () => {
    const small = await startServer({ port: 0, routes: mountTransportFixture, readMaxBytes: 8_192, writeMaxBytes: 2_048 });
    try {
      const registry = createClient(AgentRegistryService, createGrpcTransport({ baseUrl: small.url }));
      await expect(registry.validateManifest(manifest(1_500))).resolves.toMatchObject({ valid: false });
      const error = await registry.validateManifest(manifest(3_000)).catch((e: unknown) => ConnectError.from(e));
      expect(error).toBeInstanceOf(ConnectError);
      expect((error as ConnectError).code).toBe(Code.ResourceExhausted);
    } finally {
      await small.close();
    }
  });
});

describe("plain-HTTP body limit", () => {
  it("refuses a declared body over the limit with 413 before the route runs", async () => {
    const before = bodiesSeen;
    const response = await fetch(`${server.url}/upload`, { method: "POST", body: "x".repeat(2_000) });
    expect(response.status).toBe(413);
    expect(await response.text()).toContain("exceeds the limit of 1000 bytes");
    expect(bodiesSeen).toBe(before);
  });

  it("refuses a streamed (chunked) body once it passes the limit", async () => {
    const chunks = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 20; i++) controller.enqueue(new Uint8Array(100));
        controller.close();
      },
    });
    const response = await fetch(`${server.url}/upload`, { method: "POST", body: chunks, duplex: "half" } as RequestInit);
    expect(response.status).toBe(413);
    const small = await fetch(`${server.url}/upload`, { method: "POST", body: "x".repeat(900) });
    expect(await small.text()).toBe("got 900");
  });
});
