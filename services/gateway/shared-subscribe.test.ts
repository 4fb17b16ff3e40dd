import { create, toBinary } from "@bufbuild/protobuf";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { connect, constants } from "node:http2";
import { once } from "node:events";
import { describe, expect, it } from "vitest";
import { BackpressurePolicy, PinType } from "../../gen/mentatlab/v1/common_pb.js";
import { StreamService, SubscribeRequestSchema, type SubscribeRequest } from "../../gen/mentatlab/v1/stream_pb.js";
import type { MeshProcess } from "../mesh/distributed.js";
import { meshSecurity } from "../mesh/security.js";
import { serveMeshProcess } from "../mesh/serve.js";
import { readServerConfig } from "../server/config.js";
import { envelope } from "../server/fast-path/index.js";
import { RunTokenSigner } from "../shared/run-token.js";
import { createTelemetry } from "../shared/telemetry/index.js";
import { relayMethod } from "./relay.js";
import { sharedSubscribe } from "./shared-subscribe.js";
import { cleanupsAfterEach, type GatewayMesh, keys, RecordingSession, startGatewayMesh } from "./testing.js";

// A real stream process behind a real gateway: many subscribers of one stream, one upstream call.

const path = `/${StreamService.typeName}/${StreamService.method.subscribe.name}`;

const onCleanup = cleanupsAfterEach();
const { alice, bob, olga } = keys;
const startMesh = (extra: Record<string, string> = {}) => startGatewayMesh(onCleanup, extra);

/** A gateway serving Subscribe as startGateway does, with its upstream calls in view. */
async function startSharingGateway(mesh: GatewayMesh, upstream: RecordingSession, maxLagBytes = 8 * 1024 * 1024): Promise<MeshProcess> {
  const security = meshSecurity(mesh.env, { allowDevKey: false, process: "gateway" });
  const gateway = await serveMeshProcess(readServerConfig(mesh.env), security, createTelemetry(mesh.env), {
    routes: () => undefined,
    httpRoutes: [],
    encodedStreams: [sharedSubscribe(relayMethod(StreamService.method.subscribe, upstream, "stream", 8 * 1024 * 1024), maxLagBytes, 8 * 1024 * 1024)],
    close: async () => upstream.close(),
  });
  onCleanup(() => gateway.close());
  return gateway;
}

const auth = (key: string) => ({ headers: { authorization: `Bearer ${key}` } });

function producer(mesh: GatewayMesh): Client<typeof StreamService> {
  return createClient(StreamService, createGrpcTransport({ baseUrl: mesh.stream.url, acceptCompression: [] }));
}

async function openStream(mesh: GatewayMesh, type = PinType.TEXT): Promise<string> {
  const init = await producer(mesh).initStream({ payloadType: type, mimeType: "text/plain" }, auth(alice));
  return init.stream?.ref?.streamId ?? "";
}

async function publish(mesh: GatewayMesh, streamId: string, payloads: readonly Uint8Array[]): Promise<void> {
  await producer(mesh).publishBatch({ streamId, payloads: payloads.map((data) => ({ data })) }, auth(alice));
}

/** A grpc-js Subscribe call taking each event as its bytes; resolves at the first event. */
async function rawSubscriber(baseUrl: string, request: SubscribeRequest, key = alice) {
  const grpcClient = new grpc.Client(new URL(baseUrl).host, grpc.credentials.createInsecure());
  onCleanup(() => grpcClient.close());
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${key}`);
  const call = grpcClient.makeServerStreamRequest(
    path,
    (message: SubscribeRequest) => Buffer.from(toBinary(SubscribeRequestSchema, message)),
    (bytes: Buffer) => bytes,
    request,
    metadata,
  );
  const events: Buffer[] = [];
  const ended = new Promise<{ events: Buffer[]; error?: grpc.ServiceError }>((resolve) => {
    call.on("data", (bytes: Buffer) => events.push(bytes));
    call.on("error", (error: grpc.ServiceError) => resolve({ events, error }));
    call.on("end", () => resolve({ events }));
  });
  const first = await Promise.race([once(call, "data"), ended]);
  return { call, ended, started: Array.isArray(first) };
}

const text = new TextEncoder();
const payloadsOf = (count: number, bytes = 64) => Array.from({ length: count }, (_, i) => text.encode(`event ${i} `.padEnd(bytes, ".")));

describe("Subscribe shared at the distributed gateway", () => {
  it("gives 40 subscribers through the gateway, on one upstream call, the bytes a direct subscriber gets", async () => {
    const mesh = await startMesh();
    const streamId = await openStream(mesh);
    const request = create(SubscribeRequestSchema, { streamId });
    const direct = await rawSubscriber(mesh.stream.url, request);
    const relayed = await Promise.all(Array.from({ length: 40 }, () => rawSubscriber(mesh.gateway.url, request)));
    // The stream process served two Subscribe calls: the direct subscriber's and the gateway's shared one.
    expect([...mesh.stream.server.fastPathCalls].filter(([call]) => call.endsWith(path)).reduce((sum, [, n]) => sum + n, 0)).toBe(2);
    for (let batch = 0; batch < 10; batch++) await publish(mesh, streamId, payloadsOf(20));
    await producer(mesh).closeStream({ streamId }, auth(alice));
    const expected = await direct.ended;
    expect(expected.error).toBeUndefined();
    expect(expected.events.length).toBe(202);
    for (const subscriber of relayed) {
      const got = await subscriber.ended;
      expect(got.error).toBeUndefined();
      expect(got.events).toEqual(expected.events);
    }
  });

  it("makes one upstream call per stream, position and caller's scope, cancelled when the last subscriber leaves", async () => {
    const mesh = await startMesh();
    const upstream = new RecordingSession(mesh.stream.url);
    const gateway = await startSharingGateway(mesh, upstream);
    const streamId = await openStream(mesh);
    await publish(mesh, streamId, payloadsOf(3));
    const fromStart = create(SubscribeRequestSchema, { streamId });
    const sharing = await Promise.all(Array.from({ length: 30 }, () => rawSubscriber(gateway.url, fromStart)));
    expect(upstream.calls.length).toBe(1);
    // Another position, another user of the workspace, another workspace: an upstream call each.
    const later = await rawSubscriber(gateway.url, create(SubscribeRequestSchema, { streamId, afterSeq: 2n }));
    const otherUser = await rawSubscriber(gateway.url, fromStart, bob);
    const otherWorkspace = await rawSubscriber(gateway.url, fromStart, olga);
    expect(upstream.calls.length).toBe(4);
    expect(otherWorkspace.started).toBe(false);
    expect((await otherWorkspace.ended).error?.code).toBe(grpc.status.NOT_FOUND);
    // One that joins the live shared call later still gets every event from its position.
    const joiner = await rawSubscriber(gateway.url, fromStart);
    expect(upstream.calls.length).toBe(4);
    await publish(mesh, streamId, payloadsOf(2));
    await new Promise((resolve) => setTimeout(resolve, 200));
    for (const subscriber of [...sharing, joiner]) subscriber.call.cancel();
    const [shared] = upstream.calls;
    if (!shared) throw new Error("no upstream call");
    if (!shared.closed) await once(shared, "close");
    expect(shared.rstCode).toBe(constants.NGHTTP2_CANCEL);
    const joined = await joiner.ended;
    const first = await sharing[0]?.ended;
    expect(joined.events.length).toBe(6);
    expect(joined.events).toEqual(first?.events);
    later.call.cancel();
    otherUser.call.cancel();
  });

  it("ends every subscriber with UNAVAILABLE when the stream process goes away", async () => {
    const mesh = await startMesh();
    const streamId = await openStream(mesh);
    const subscribers = await Promise.all(Array.from({ length: 10 }, () => rawSubscriber(mesh.gateway.url, create(SubscribeRequestSchema, { streamId }))));
    await mesh.stream.close();
    for (const subscriber of subscribers) expect((await subscriber.ended).error?.code).toBe(grpc.status.UNAVAILABLE);
  });

  it("cuts off a subscriber that does not read with OUT_OF_RANGE, without holding back the others", async () => {
    const mesh = await startMesh();
    const upstream = new RecordingSession(mesh.stream.url);
    const gateway = await startSharingGateway(mesh, upstream, 64 * 1024);
    const streamId = await openStream(mesh, PinType.BINARY);
    const request = create(SubscribeRequestSchema, { streamId });
    const fast = await Promise.all(Array.from({ length: 5 }, () => rawSubscriber(gateway.url, request)));
    // A reader that reads nothing: a 1 KiB flow-control window, and the stream paused.
    const session = connect(gateway.url, { settings: { initialWindowSize: 1024 } });
    onCleanup(() => void session.destroy());
    const stalled = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", authorization: `Bearer ${alice}` });
    stalled.end(envelope(toBinary(SubscribeRequestSchema, request)));
    stalled.pause();
    await new Promise((resolve) => stalled.once("response", resolve));
    expect(upstream.calls.length).toBe(1);

    const chunk = new Uint8Array(4 * 1024).fill(7);
    for (let batch = 0; batch < 16; batch++)
      await publish(
        mesh,
        streamId,
        Array.from({ length: 4 }, () => chunk),
      );
    await producer(mesh).closeStream({ streamId }, auth(alice));
    for (const subscriber of fast) {
      const got = await subscriber.ended;
      expect(got.error).toBeUndefined();
      expect(got.events.length).toBe(66);
    }
    const trailers = new Promise<Record<string, unknown>>((resolve) => stalled.once("trailers", resolve));
    stalled.on("data", () => undefined);
    stalled.resume();
    const ending = await trailers;
    expect(ending["grpc-status"]).toBe(String(grpc.status.OUT_OF_RANGE));
    expect(decodeURIComponent(String(ending["grpc-message"]))).toContain("fell more than 65536 bytes behind");
  });

  it("gives a run's downstream agent a call of its own, paced by its reading, so a block edge holds its producer back", async () => {
    const mesh = await startMesh();
    const upstream = new RecordingSession(mesh.stream.url);
    const gateway = await startSharingGateway(mesh, upstream, 64 * 1024);
    const tokens = new RunTokenSigner(mesh.env.MENTATLAB_TOKEN_SECRET ?? "");
    const tokenOf = (nodeId: string) => tokens.mint({ runId: "r1", nodeId, attempt: 1, user: "alice", workspace: "ws-a" }, 600);
    const init = await producer(mesh).initStream(
      {
        payloadType: PinType.BINARY,
        runId: "r1",
        nodeId: "producer",
        consumers: [{ nodeId: "reader", policy: BackpressurePolicy.BLOCK, windowBytes: 65_536n }],
      },
      auth(tokenOf("producer")),
    );
    const streamId = init.stream?.ref?.streamId ?? "";
    const request = create(SubscribeRequestSchema, { streamId });
    // The agent's sidecar reading nothing: a 1 KiB flow-control window, and the stream paused.
    const session = connect(gateway.url, { settings: { initialWindowSize: 1024 } });
    onCleanup(() => void session.destroy());
    const stalled = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      authorization: `Bearer ${tokenOf("reader")}`,
    });
    stalled.end(envelope(toBinary(SubscribeRequestSchema, request)));
    stalled.pause();
    await new Promise((resolve) => stalled.once("response", resolve));

    const total = 16 * 1024 * 1024;
    const chunk = new Uint8Array(64 * 1024).fill(7);
    const publishing = (async () => {
      for (let sent = 0; sent < total; sent += 16 * chunk.byteLength) {
        await producer(mesh).publishBatch({ streamId, payloads: Array.from({ length: 16 }, () => ({ data: chunk })) }, auth(tokenOf("producer")));
      }
    })();
    // Held: what was published stops growing well short of the whole, as the gateway reads no further ahead.
    let published = -1n;
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      const now = (await producer(mesh).getStream({ streamId }, auth(alice))).stream?.bytesPublished ?? 0n;
      if (now === published) break;
      published = now;
    }
    expect(published).toBeLessThan(BigInt(total / 2));

    let received = 0;
    stalled.on("data", (bytes: Buffer) => (received += bytes.byteLength));
    const trailers = new Promise<Record<string, unknown>>((resolve) => stalled.once("trailers", resolve));
    stalled.resume();
    await publishing;
    await producer(mesh).closeStream({ streamId }, auth(tokenOf("producer")));
    const ending = await trailers;
    expect(ending["grpc-status"]).toBe(String(grpc.status.OK));
    expect(received).toBeGreaterThan(total);
    expect(upstream.calls.length).toBe(1);
  });
});
