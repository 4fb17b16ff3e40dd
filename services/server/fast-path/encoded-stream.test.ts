import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { connect, constants } from "node:http2";
import { afterEach, describe, expect, it } from "vitest";
import {
  Health,
  HealthCheckRequestSchema,
  HealthCheckResponse_ServingStatus as Status,
  HealthCheckResponseSchema,
} from "../../../gen/grpc/health/v1/health_pb.js";
import { type EncodedServerStream, envelope } from "./index.js";
import { type RunningServer, startServer } from "../server.js";

// The fast path answers Health.Watch with SERVICE_UNKNOWN where the Connect handler says SERVING, so a
// client can tell which of the two served it.

const marker = envelope(toBinary(HealthCheckResponseSchema, create(HealthCheckResponseSchema, { status: Status.SERVICE_UNKNOWN })));

interface Probe {
  readonly stream: EncodedServerStream<typeof Health.method.watch>;
  /** Why each call's signal aborted, in call order. */
  readonly aborts: unknown[];
  /** Values the interceptors set, as each call saw them. */
  readonly tags: (string | undefined)[];
  /** How each call's handler ended: "returned" or the error it threw. */
  readonly endings: unknown[];
}

function probe(behaviour: (service: string) => Promise<void> | void = () => undefined): Probe {
  const aborts: unknown[] = [];
  const tags: (string | undefined)[] = [];
  const endings: unknown[] = [];
  return {
    aborts,
    tags,
    endings,
    stream: {
      method: Health.method.watch,
      async serve(request, context, out) {
        tags.push(context.requestHeader.get("x-tag") ?? undefined);
        context.signal.addEventListener("abort", () => aborts.push(context.signal.reason), { once: true });
        try {
          if (!out.write(marker)) await out.ready();
          await behaviour(request.service);
          if (request.service === "forever") {
            await new Promise((resolve) => context.signal.addEventListener("abort", resolve, { once: true }));
          }
          // Writes as fast as the client reads, until it goes away.
          while (request.service === "flood") {
            context.signal.throwIfAborted();
            if (!out.write(marker)) await out.ready();
          }
          context.signal.throwIfAborted();
          endings.push("returned");
        } catch (err) {
          endings.push(err);
          throw err;
        }
      },
    },
  };
}

const tagged: Interceptor = (next) => (req) => {
  if (req.header.get("x-refuse") === "yes") throw new ConnectError("refused by an interceptor", Code.PermissionDenied);
  req.header.set("x-tag", "intercepted");
  return next(req);
};

let server: RunningServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function serve(p: Probe, shutdownGraceMs = 200): Promise<RunningServer> {
  server = await startServer({ port: 0, routes: () => undefined, interceptors: [tagged], encodedStreams: [p.stream], shutdownGraceMs });
  return server;
}

const transports: Record<string, { make: (baseUrl: string) => Transport; fast: boolean }> = {
  "gRPC (HTTP/2)": { make: (baseUrl) => createGrpcTransport({ baseUrl }), fast: true },
  "Connect binary (HTTP/2)": { make: (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "2" }), fast: true },
  "Connect JSON (HTTP/2)": { make: (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: false }), fast: false },
  "Connect binary (HTTP/1.1)": { make: (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "1.1" }), fast: false },
  "gRPC-web (HTTP/1.1)": { make: (baseUrl) => createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }), fast: false },
};

async function firstStatus(transport: Transport, service: string, headers: Record<string, string> = {}): Promise<Status | undefined> {
  for await (const response of createClient(Health, transport).watch({ service }, { headers })) return response.status;
  return undefined;
}

describe("encoded server streams beside Connect", () => {
  it.each(Object.entries(transports))("serves %s on the right path", async (_name, { make, fast }) => {
    const p = probe();
    const url = (await serve(p)).url;
    expect(await firstStatus(make(url), "")).toBe(fast ? Status.SERVICE_UNKNOWN : Status.SERVING);
    expect(p.tags).toEqual(fast ? ["intercepted"] : []);
  });

  it.each(["gRPC (HTTP/2)", "Connect binary (HTTP/2)"])("runs the interceptors and the handler's errors reach %s clients", async (name) => {
    const make = transports[name]?.make;
    if (!make) throw new Error(name);
    const p = probe((service) => {
      if (service === "fail") throw new ConnectError("no such thing; ask for another", Code.NotFound);
      if (service === "crash") throw new Error("a bug");
    });
    const url = (await serve(p)).url;
    const failure = async (service: string, headers?: Record<string, string>) => {
      try {
        for await (const _ of createClient(Health, make(url)).watch({ service }, { headers }));
      } catch (err) {
        return ConnectError.from(err);
      }
      return undefined;
    };
    // The first message reached the client; the error follows it.
    const collected: Status[] = [];
    const read = (async () => {
      for await (const response of createClient(Health, make(url)).watch({ service: "fail" })) collected.push(response.status);
    })();
    await expect(read).rejects.toMatchObject({ code: Code.NotFound, rawMessage: "no such thing; ask for another" });
    expect(collected).toEqual([Status.SERVICE_UNKNOWN]);
    expect((await failure("crash"))?.code).toBe(Code.Internal);
    expect(await failure("", { "x-refuse": "yes" })).toMatchObject({ code: Code.PermissionDenied, rawMessage: "refused by an interceptor" });
  });

  it("aborts the handler when the client goes away", async () => {
    const p = probe();
    const url = (await serve(p)).url;
    const controller = new AbortController();
    const watch = createClient(Health, createGrpcTransport({ baseUrl: url })).watch({ service: "forever" }, { signal: controller.signal });
    expect((await watch[Symbol.asyncIterator]().next()).value?.status).toBe(Status.SERVICE_UNKNOWN);
    controller.abort();
    await expect.poll(() => p.aborts.length).toBe(1);
    expect(ConnectError.from(p.aborts[0]).code).toBe(Code.Canceled);
  });

  it.each([
    ["gRPC (HTTP/2)", { "grpc-timeout": "150m" }],
    ["Connect binary (HTTP/2)", { "connect-timeout-ms": "150" }],
  ])("ends a %s call at the deadline its header sets with DEADLINE_EXCEEDED", async (name, headers) => {
    const make = transports[name]?.make;
    if (!make) throw new Error(name);
    const p = probe();
    const url = (await serve(p)).url;
    const statuses: Status[] = [];
    // The header alone, without a client-side timer: only the server can end this call.
    const read = (async () => {
      for await (const response of createClient(Health, make(url)).watch({ service: "forever" }, { headers })) statuses.push(response.status);
    })();
    await expect(read).rejects.toMatchObject({ code: Code.DeadlineExceeded });
    expect(statuses).toEqual([Status.SERVICE_UNKNOWN]);
    expect(ConnectError.from(p.aborts[0]).code).toBe(Code.DeadlineExceeded);
  });

  it("releases a handler waiting for a stalled client once the client resets the stream", async () => {
    const p = probe();
    const url = (await serve(p)).url;
    const session = connect(url, { settings: { initialWindowSize: 1024 } });
    const body = toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service: "flood" }));
    const call = session.request({ ":method": "POST", ":path": "/grpc.health.v1.Health/Watch", "content-type": "application/grpc" });
    call.end(Buffer.concat([Buffer.from([0, 0, 0, 0, body.byteLength]), body]));
    call.pause();
    await new Promise((resolve) => call.once("response", resolve));
    // Long enough for the handler to fill every buffer and wait for 'drain'.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(p.endings).toEqual([]);
    call.close(constants.NGHTTP2_CANCEL);
    await expect.poll(() => p.endings.length, { timeout: 2_000 }).toBe(1);
    expect(ConnectError.from(p.endings[0]).code).toBe(Code.Canceled);
    session.close();
  });

  it("ends open streams with UNAVAILABLE once the shutdown grace period is over", async () => {
    const p = probe();
    const running = await serve(p, 100);
    const events = createClient(Health, createConnectTransport({ baseUrl: running.url, httpVersion: "2" }))
      .watch({ service: "forever" })
      [Symbol.asyncIterator]();
    expect((await events.next()).value?.status).toBe(Status.SERVICE_UNKNOWN);
    const next = events.next().then(
      () => undefined,
      (err: unknown) => ConnectError.from(err),
    );
    await running.close();
    expect((await next)?.code).toBe(Code.Unavailable);
  });
});
