import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { connect, constants } from "node:http2";
import { once } from "node:events";
import { describe, expect, it } from "vitest";
import { PinType } from "../../gen/mentatlab/v1/common_pb.js";
import { PublishRequestSchema, StreamEventSchema, StreamService, SubscribeRequestSchema, type SubscribeRequest } from "../../gen/mentatlab/v1/stream_pb.js";
import type { MeshProcess } from "../mesh/distributed.js";
import { meshSecurity } from "../mesh/security.js";
import { serveMeshProcess } from "../mesh/serve.js";
import { readServerConfig } from "../server/config.js";
import { envelope } from "../server/fast-path/index.js";
import { createTelemetry } from "../shared/telemetry/index.js";
import { relayService } from "./relay.js";
import { cleanupsAfterEach, type GatewayMesh, keys, RecordingSession, startGatewayMesh } from "./testing.js";
import { UpstreamSession } from "./upstream-session.js";

// A stream process and a gateway, started in this process the way `mentatlab serve` starts them:
// every subscriber is compared with one that subscribes to the stream process directly.

const path = `/${StreamService.typeName}/${StreamService.method.subscribe.name}`;

const onCleanup = cleanupsAfterEach();
const { alice, olga } = keys;
const startMesh = (extra: Record<string, string> = {}) => startGatewayMesh(onCleanup, extra);

function client(baseUrl: string, kind: "grpc" | "connect"): Client<typeof StreamService> {
  const transport: Transport =
    kind === "grpc"
      ? createGrpcTransport({ baseUrl, acceptCompression: [] })
      : createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true, acceptCompression: [] });
  return createClient(StreamService, transport);
}

const auth = (key: string) => ({ headers: { authorization: `Bearer ${key}` } });

/** A stream in alice's workspace holding `payloads`, ended when `close` is set. */
async function streamWith(mesh: GatewayMesh, payloads: Uint8Array[], type = PinType.TEXT, close = true): Promise<string> {
  const direct = client(mesh.stream.url, "grpc");
  const init = await direct.initStream({ payloadType: type, mimeType: "text/plain" }, auth(alice));
  const streamId = init.stream?.ref?.streamId ?? "";
  for (let at = 0; at < payloads.length; at += 16) {
    await direct.publishBatch({ streamId, payloads: payloads.slice(at, at + 16).map((data) => ({ data })) }, auth(alice));
  }
  if (close) await direct.closeStream({ streamId }, auth(alice));
  return streamId;
}

/** A grpc-js Subscribe call whose events arrive as their bytes, undecoded. */
function rawGrpcJsCall(baseUrl: string, request: SubscribeRequest, key: string): grpc.ClientReadableStream<Buffer> {
  const grpcClient = new grpc.Client(new URL(baseUrl).host, grpc.credentials.createInsecure());
  onCleanup(() => grpcClient.close());
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${key}`);
  return grpcClient.makeServerStreamRequest(
    path,
    (message: SubscribeRequest) => Buffer.from(toBinary(SubscribeRequestSchema, message)),
    (bytes: Buffer) => bytes,
    request,
    metadata,
  );
}

/** Every event's bytes as grpc-js receives them. */
function rawGrpcJs(baseUrl: string, request: SubscribeRequest, key: string): Promise<Buffer[]> {
  const call = rawGrpcJsCall(baseUrl, request, key);
  return new Promise((resolve, reject) => {
    const events: Buffer[] = [];
    call.on("data", (bytes: Buffer) => events.push(bytes));
    call.on("error", reject);
    call.on("end", () => resolve(events));
  });
}

async function eventBytes(c: Client<typeof StreamService>, request: SubscribeRequest, key = alice): Promise<Buffer[]> {
  const events: Buffer[] = [];
  for await (const event of c.subscribe(request, auth(key))) events.push(Buffer.from(toBinary(StreamEventSchema, event)));
  return events;
}

async function failure(c: Client<typeof StreamService>, request: SubscribeRequest, key?: string): Promise<ConnectError> {
  try {
    await eventBytes(c, request, key);
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("the subscription ended without an error");
}

const summary = (err: ConnectError) => ({
  code: err.code,
  rawMessage: err.rawMessage,
  details: err.details.map((d) => ("desc" in d ? d.desc.typeName : d.type)),
});

/** A gateway serving only the stream service's relays, as startGateway serves them, with its upstream connection in view. */
async function startRelayGateway(mesh: GatewayMesh, upstream: UpstreamSession): Promise<MeshProcess> {
  const security = meshSecurity(mesh.env, { allowDevKey: false, process: "gateway" });
  const gateway = await serveMeshProcess(readServerConfig(mesh.env), security, createTelemetry(mesh.env), {
    routes: () => undefined,
    httpRoutes: [],
    relays: relayService(StreamService, upstream, "stream", 8 * 1024 * 1024),
    close: async () => upstream.close(),
  });
  onCleanup(() => gateway.close());
  return gateway;
}

const text = new TextEncoder();
const payloads = [text.encode("hello"), text.encode("lorem ipsum ".repeat(400)), text.encode("π ≈ 3.14159"), new Uint8Array(0), text.encode("end")];

describe("calls relayed through the distributed gateway", () => {
  it("delivers byte-identical events to gRPC, Connect and grpc-js subscribers, resumed and gzip'd", async () => {
    const mesh = await startMesh();
    const streamId = await streamWith(mesh, payloads);
    for (const request of [
      create(SubscribeRequestSchema, { streamId }),
      create(SubscribeRequestSchema, { streamId, afterSeq: 2n }),
      create(SubscribeRequestSchema, { streamId, acceptGzip: true }),
    ]) {
      const direct = await rawGrpcJs(mesh.stream.url, request, alice);
      expect(direct.length).toBeGreaterThan(2);
      expect(await rawGrpcJs(mesh.gateway.url, request, alice)).toEqual(direct);
      expect(await eventBytes(client(mesh.gateway.url, "grpc"), request)).toEqual(direct);
      expect(await eventBytes(client(mesh.gateway.url, "connect"), request)).toEqual(direct);
    }
    // gzip'd text really differs on the wire, so the comparison above covered it.
    const plain = await rawGrpcJs(mesh.gateway.url, create(SubscribeRequestSchema, { streamId }), alice);
    const gzipped = await rawGrpcJs(mesh.gateway.url, create(SubscribeRequestSchema, { streamId, acceptGzip: true }), alice);
    expect(gzipped).not.toEqual(plain);
  });

  it("ends with the same errors as the stream process, and authenticates at the gateway", async () => {
    const mesh = await startMesh({ STREAM_RETAINED_MAX_EVENTS: "3" });
    const streamId = await streamWith(mesh, payloads);
    for (const kind of ["grpc", "connect"] as const) {
      const direct = client(mesh.stream.url, kind);
      const relayed = client(mesh.gateway.url, kind);
      const otherWorkspace = await failure(relayed, create(SubscribeRequestSchema, { streamId }), olga);
      expect(otherWorkspace.code).toBe(Code.NotFound);
      expect(summary(otherWorkspace)).toEqual(summary(await failure(direct, create(SubscribeRequestSchema, { streamId }), olga)));
      const trimmed = await failure(relayed, create(SubscribeRequestSchema, { streamId, afterSeq: 1n }));
      expect(trimmed.code).toBe(Code.OutOfRange);
      expect(summary(trimmed)).toEqual(summary(await failure(direct, create(SubscribeRequestSchema, { streamId, afterSeq: 1n }))));
      const anonymous = await failure(relayed, create(SubscribeRequestSchema, { streamId }), "no-such-key");
      expect(anonymous.code).toBe(Code.Unauthenticated);
    }
  });

  it("holds back the stream process while a subscriber does not read, then delivers everything", async () => {
    const mesh = await startMesh();
    const chunk = new Uint8Array(256 * 1024).fill(1);
    const count = 64;
    const streamId = await streamWith(
      mesh,
      Array.from({ length: count }, () => chunk),
      PinType.BINARY,
    );
    const upstream = new UpstreamSession(mesh.stream.url);
    const gateway = await startRelayGateway(mesh, upstream);

    const session = connect(gateway.url);
    onCleanup(() => void session.destroy());
    const call = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", authorization: `Bearer ${alice}` });
    call.end(envelope(toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, { streamId }))));
    call.pause();
    await new Promise((resolve) => call.once("response", resolve));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const upstreamSocket = upstream.get().socket;
    const heldBack = upstreamSocket.bytesRead;
    expect(heldBack).toBeLessThan((count * chunk.byteLength) / 4);

    let received = 0;
    call.on("data", (bytes: Buffer) => (received += bytes.byteLength));
    const trailers = new Promise<Record<string, unknown>>((resolve) => call.once("trailers", resolve));
    call.resume();
    await new Promise((resolve) => call.once("end", resolve));
    expect(received).toBeGreaterThan(count * chunk.byteLength);
    expect((await trailers)["grpc-status"]).toBe("0");
    expect(upstreamSocket.bytesRead).toBeGreaterThan(count * chunk.byteLength);
  });

  it("cancels the upstream call when the subscriber goes away", async () => {
    const mesh = await startMesh();
    const streamId = await streamWith(mesh, [text.encode("first")], PinType.TEXT, false);
    const upstream = new RecordingSession(mesh.stream.url);
    const gateway = await startRelayGateway(mesh, upstream);
    const call = rawGrpcJsCall(gateway.url, create(SubscribeRequestSchema, { streamId }), alice);
    call.on("error", () => undefined);
    await new Promise((resolve) => call.once("data", resolve));
    call.cancel();
    const [relayed] = upstream.calls;
    if (!relayed) throw new Error("the gateway made no upstream call");
    if (!relayed.closed) await once(relayed, "close");
    expect(relayed.rstCode).toBe(constants.NGHTTP2_CANCEL);
  });

  it("ends the stream with UNAVAILABLE when the connection to the stream process is lost", async () => {
    const mesh = await startMesh();
    const streamId = await streamWith(mesh, [text.encode("first")], PinType.TEXT, false);
    const upstream = new UpstreamSession(mesh.stream.url);
    const gateway = await startRelayGateway(mesh, upstream);
    const call = rawGrpcJsCall(gateway.url, create(SubscribeRequestSchema, { streamId }), alice);
    await new Promise((resolve) => call.once("data", resolve));
    const ending = new Promise<grpc.ServiceError>((resolve, reject) => {
      call.on("error", resolve);
      call.on("end", () => reject(new Error("the subscription ended OK")));
    });
    upstream.get().socket.destroy();
    expect((await ending).code).toBe(grpc.status.UNAVAILABLE);
  });

  it("ends open streams with UNAVAILABLE when the gateway or the stream process shuts down", async () => {
    for (const stop of ["gateway", "stream"] as const) {
      const mesh = await startMesh();
      const streamId = await streamWith(mesh, [text.encode("first")], PinType.TEXT, false);
      // grpc-js, because connect-node's client leaves an unhandled rejection behind when a server it
      // streams from closes its session (seen subscribing to the stream process directly too).
      const call = rawGrpcJsCall(mesh.gateway.url, create(SubscribeRequestSchema, { streamId }), alice);
      await new Promise((resolve) => call.once("data", resolve));
      const ending = new Promise<grpc.ServiceError>((resolve, reject) => {
        call.on("error", resolve);
        call.on("end", () => reject(new Error("the subscription ended OK")));
      });
      call.on("data", () => undefined);
      await (stop === "gateway" ? mesh.gateway.close() : mesh.stream.close());
      expect((await ending).code).toBe(grpc.status.UNAVAILABLE);
    }
  });

  it("relays a Publish stream message by message, and a message the gateway refuses ends it with nothing of it stored", async () => {
    const mesh = await startMesh();
    const relayed = client(mesh.gateway.url, "grpc");
    const init = await relayed.initStream({ payloadType: PinType.TEXT, mimeType: "text/plain" }, auth(alice));
    const streamId = init.stream?.ref?.streamId ?? "";
    const tooManyAttributes = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"]));
    async function* requests() {
      yield create(PublishRequestSchema, { part: { case: "open", value: { streamId } } });
      for (let clientSeq = 1n; clientSeq <= 3n; clientSeq++) {
        yield create(PublishRequestSchema, { part: { case: "data", value: { data: text.encode(`payload ${clientSeq}`), clientSeq } } });
      }
      // Give the three a moment to be stored before the refused one arrives.
      await new Promise((resolve) => setTimeout(resolve, 200));
      yield create(PublishRequestSchema, { part: { case: "data", value: { data: text.encode("refused"), clientSeq: 4n, attributes: tooManyAttributes } } });
    }
    const acks: bigint[] = [];
    const publishing = (async () => {
      for await (const response of relayed.publish(requests(), auth(alice))) {
        if (response.event.case === "ack") acks.push(response.event.value.lastClientSeq);
      }
    })();
    const refusal = await publishing.then(
      () => undefined,
      (err: unknown) => ConnectError.from(err),
    );
    expect(refusal?.code).toBe(Code.InvalidArgument);
    expect(refusal?.rawMessage).toContain("attributes");
    await client(mesh.stream.url, "grpc").closeStream({ streamId }, auth(alice));
    const stored: string[] = [];
    for await (const event of client(mesh.stream.url, "grpc").subscribe({ streamId }, auth(alice))) {
      if (event.event.case === "data") stored.push(new TextDecoder().decode(event.event.value.data));
    }
    expect(stored).toEqual(["payload 1", "payload 2", "payload 3"]);
    // Every call above went through the gateway's fast path, as relays.
    for (const method of ["InitStream", "Publish"]) {
      expect(mesh.gateway.server.fastPathCalls.get(`grpc /${StreamService.typeName}/${method}`)).toBeGreaterThan(0);
    }
  });

  it("answers a unary call with UNAVAILABLE, at once, while the owning process is down", async () => {
    const mesh = await startMesh();
    await mesh.stream.close();
    const started = Date.now();
    const refusal = await client(mesh.gateway.url, "grpc")
      .initStream({ payloadType: PinType.TEXT, mimeType: "text/plain" }, auth(alice))
      .then(
        () => undefined,
        (err: unknown) => ConnectError.from(err),
      );
    expect(refusal?.code).toBe(Code.Unavailable);
    expect(refusal?.rawMessage).toContain("stream process");
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});
