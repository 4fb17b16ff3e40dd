import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { connect as http2Connect } from "node:http2";
import { connect } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.js";
import { StorageService } from "../../gen/mentatlab/v1/storage_pb.js";
import { startServer, type RunningServer } from "./server.js";
import { mountTransportFixture } from "./testing.js";

let server: RunningServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(shutdownGraceMs: number): Promise<RunningServer> {
  server = await startServer({ port: 0, routes: mountTransportFixture, shutdownGraceMs });
  return server;
}

const transports: Record<string, (baseUrl: string) => Transport> = {
  "gRPC over h2c": (baseUrl) => createGrpcTransport({ baseUrl }),
  "gRPC-web over HTTP/1.1": (baseUrl) => createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }),
  "Connect over HTTP/1.1": (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "1.1" }),
  "Connect over HTTP/2": (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "2" }),
};

/** Reads a Download stream to its end; returns how many chunks came and how it ended. */
async function readDownload(transport: Transport, refId: string, length: bigint, onFirst: () => void) {
  let chunks = 0;
  try {
    for await (const _ of createClient(StorageService, transport).download({ refId, length })) {
      if (chunks++ === 0) onFirst();
    }
    return { chunks, code: "OK" };
  } catch (error) {
    return { chunks, code: Code[ConnectError.from(error).code] };
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

describe.each(Object.entries(transports))("graceful shutdown, %s", (_name, make) => {
  it("lets an in-flight stream finish within the grace period and refuses new connections", async () => {
    const running = await start(5_000);
    let closing: Promise<void> | undefined;
    let refused: Promise<boolean> | undefined;
    const result = await readDownload(make(running.url), "slow:40", 8n, () => {
      closing = running.close();
      refused = canConnect(running.port).then((ok) => !ok);
    });
    expect(result).toEqual({ chunks: 8, code: "OK" });
    expect(await refused).toBe(true);
    const started = Date.now();
    await closing;
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it.each(["slow", "truncating"])("ends a %s stream still running after the grace period with UNAVAILABLE, not OK", async (kind) => {
    const running = await start(300);
    let closing: Promise<void> | undefined;
    const started = Date.now();
    const result = await readDownload(make(running.url), `${kind}:50`, 1_000n, () => (closing = running.close()));
    expect(result.code).toBe("Unavailable");
    expect(result.chunks).toBeGreaterThan(1);
    expect(result.chunks).toBeLessThan(1_000);
    await closing;
    expect(Date.now() - started).toBeLessThan(3_000);
  });
});

describe("health during shutdown", () => {
  it("tells watchers NOT_SERVING before the stream ends", async () => {
    const running = await start(200);
    const seen: Status[] = [];
    let error: ConnectError | undefined;
    try {
      for await (const response of createClient(Health, createGrpcTransport({ baseUrl: running.url })).watch({ service: "" })) {
        seen.push(response.status);
        if (seen.length === 1) void running.close();
      }
    } catch (caught) {
      error = ConnectError.from(caught);
    }
    expect(seen).toEqual([Status.SERVING, Status.NOT_SERVING]);
    expect(error?.code).toBe(Code.Unavailable);
  });
});

describe("early answers over HTTP/2", () => {
  it("end a stream whose client never finishes its body, so shutdown does not wait for it", async () => {
    server = await startServer({
      port: 0,
      routes: mountTransportFixture,
      shutdownGraceMs: 5_000,
      httpRoutes: [{ method: "POST", pathPrefix: "/early", handle: async () => new Response("no need for the rest") }],
    });
    const session = http2Connect(server.url);
    const stream = session.request({ ":method": "POST", ":path": "/early" });
    stream.write("part of a body that never ends");
    const status = await new Promise((resolve) => stream.once("response", (headers) => resolve(headers[":status"])));
    expect(status).toBe(200);
    stream.resume();
    const started = Date.now();
    await server.close();
    expect(Date.now() - started).toBeLessThan(1_000);
    session.destroy();
  });
});
