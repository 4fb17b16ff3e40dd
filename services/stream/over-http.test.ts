import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { PinType } from "../../gen/mentatlab/v1/common_pb.js";
import { StreamService } from "../../gen/mentatlab/v1/stream_pb.js";
import { attachPrincipal, testPrincipal } from "../../test/support/in-memory.js";
import { type RunningServer, startServer } from "../server/server.js";
import { createStreams, type StreamRuntime } from "./index.js";
import { dataMessage, type PublishMessage, Pushable, sseText, testStreamConfig } from "./testing.js";

// The service and its SSE route on the shared one-port server, spoken to over real sockets:
// gRPC over h2c, Connect JSON over HTTP/1.1, and Server-Sent Events over HTTP/1.1.

const principal = testPrincipal({ user: "alice", workspace: "ws-http" });

let running: { server: RunningServer; runtime: StreamRuntime } | undefined;
afterEach(async () => {
  await running?.server.close();
  await running?.runtime.close();
  running = undefined;
});

async function serve(): Promise<{ server: RunningServer; runtime: StreamRuntime }> {
  const runtime = await createStreams(testStreamConfig());
  const server = await startServer({
    port: 0,
    routes: (router) => router.service(StreamService, runtime.impl),
    interceptors: [attachPrincipal(principal)],
    httpRoutes: runtime.routes,
    authenticateHttp: async (request) => (request.headers.get("authorization") === "Bearer key-1" ? principal : undefined),
    uncompressedServices: [StreamService.typeName],
    shutdownGraceMs: 500,
  });
  running = { server, runtime };
  return running;
}

describe("StreamService over the one-port server", () => {
  it("publishes over gRPC and Connect/HTTP 1.1 while an SSE client follows live", async () => {
    const { server } = await serve();
    const grpc = createClient(StreamService, createGrpcTransport({ baseUrl: server.url }));
    const http1 = createClient(StreamService, createConnectTransport({ baseUrl: server.url, httpVersion: "1.1" }));
    const init = await grpc.initStream({ payloadType: PinType.TEXT });
    const id = init.stream?.ref?.streamId ?? "";
    const ssePath = init.stream?.ref?.ssePath ?? "";

    expect((await fetch(`${server.url}${ssePath}`)).status).toBe(401);
    const response = await fetch(`${server.url}${ssePath}`, { headers: { authorization: "Bearer key-1" } });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/event-stream");
    const sse = sseText(response);
    const readUntil = (needle: string) => sse.until(needle);
    await readUntil("event: stream_start");

    const requests = new Pushable<PublishMessage>();
    const acks = grpc.publish(requests)[Symbol.asyncIterator]();
    requests.push({ part: { case: "open", value: { streamId: id } } });
    await acks.next();
    requests.push(dataMessage("over grpc", 1n));
    await readUntil("data: over grpc");
    requests.end();
    for (;;) if ((await acks.next()).done) break;

    await http1.publishBatch({ streamId: id, payloads: [{ data: new TextEncoder().encode("over http/1.1"), clientSeq: 2n }] });
    await readUntil("data: over http/1.1");
    await http1.closeStream({ streamId: id });
    await readUntil("event: stream_end");
    expect((await sse.next()).done).toBe(true);
    expect(sse.seen).toMatch(/id: 2\nevent: stream_data\ndata: over grpc\n\nid: 3\nevent: stream_data\ndata: over http\/1.1\n/);
  });

  it("ends live subscriptions with UNAVAILABLE, not a silent end, when the service shuts down", async () => {
    const { server, runtime } = await serve();
    const grpc = createClient(StreamService, createGrpcTransport({ baseUrl: server.url }));
    const id = (await grpc.initStream({ payloadType: PinType.TEXT })).stream?.ref?.streamId ?? "";
    const events = grpc.subscribe({ streamId: id })[Symbol.asyncIterator]();
    expect((await events.next()).value?.seq).toBe(1n);
    const pending = events.next();
    await runtime.close();
    const error = await pending.then(
      () => undefined,
      (err: unknown) => ConnectError.from(err),
    );
    expect(error?.code).toBe(Code.Unavailable);
    expect(error?.rawMessage).toContain("resubscribe with after_seq");
  });
});
