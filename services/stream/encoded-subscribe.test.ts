import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { connect } from "node:http2";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { PinType } from "../../gen/mentatlab/v1/common_pb.js";
import { type StreamEvent, StreamEventSchema, StreamService, SubscribeRequestSchema } from "../../gen/mentatlab/v1/stream_pb.js";
import { type RunningServer, openServices, startServer } from "../server/server.js";
import { Authenticator } from "../shared/auth/authenticator.js";
import { authInterceptor } from "../shared/auth/interceptor.js";
import { permissionsOf } from "../shared/auth/roles.js";
import { RunTokenSigner } from "../shared/run-token.js";
import { validationInterceptor } from "../shared/validation.js";
import { createStreams, type StreamConfig, type StreamRuntime } from "./index.js";
import { collectEvents, dataMessage, type PublishMessage, Pushable, testStreamConfig, within } from "./testing.js";

// Subscribe on the server's encoded fast path (gRPC and binary Connect over HTTP/2), with the real
// auth and validation interceptors, checked against the Connect handler (Connect over HTTP/1.1).

const keys = [
  { key: "key-alice", user: "alice", workspace: "ws-a", roles: ["admin"] },
  { key: "key-producer", user: "pat", workspace: "ws-a", roles: ["multimodal_producer"] },
  { key: "key-other", user: "olga", workspace: "ws-b", roles: ["admin"] },
];
expect(permissionsOf(["multimodal_producer"]).has("stream:subscribe")).toBe(false);

interface Running {
  readonly server: RunningServer;
  readonly runtime: StreamRuntime;
}
let running: Running | undefined;
const grpcClients: grpc.Client[] = [];
afterEach(async () => {
  for (const client of grpcClients.splice(0)) client.close();
  await running?.server.close();
  await running?.runtime.close();
  running = undefined;
});

async function serve(config: Partial<StreamConfig> = {}, shutdownGraceMs = 500): Promise<Running> {
  const runtime = await createStreams(testStreamConfig(config));
  const authenticator = new Authenticator(keys, new RunTokenSigner("encoded-subscribe-test-secret-0123456789"));
  const server = await startServer({
    port: 0,
    routes: (router) => router.service(StreamService, runtime.impl),
    interceptors: [authInterceptor(authenticator, openServices), validationInterceptor()],
    uncompressedServices: [StreamService.typeName],
    encodedStreams: runtime.encodedStreams,
    shutdownGraceMs,
  });
  running = { server, runtime };
  return running;
}

const bearer =
  (key: string | null): Interceptor =>
  (next) =>
  (req) => {
    if (key) req.header.set("authorization", `Bearer ${key}`);
    return next(req);
  };

type Kind = "grpc" | "connect-h2" | "connect-http1";
const fastKinds = ["grpc", "connect-h2"] as const;

function clientOf(url: string, kind: Kind, key: string | null = "key-alice"): Client<typeof StreamService> {
  const interceptors = [bearer(key)];
  if (kind === "grpc") return createClient(StreamService, createGrpcTransport({ baseUrl: url, interceptors }));
  const httpVersion = kind === "connect-h2" ? "2" : "1.1";
  return createClient(StreamService, createConnectTransport({ baseUrl: url, httpVersion, interceptors }));
}

async function openTextStream(producer: Client<typeof StreamService>): Promise<string> {
  return (await producer.initStream({ payloadType: PinType.TEXT })).stream?.ref?.streamId ?? "";
}

async function publish(producer: Client<typeof StreamService>, id: string, texts: readonly string[]): Promise<void> {
  const payloads = texts.map((text) => ({ data: new TextEncoder().encode(text) }));
  await producer.publishBatch({ streamId: id, payloads });
}

const wire = (events: readonly StreamEvent[]) => events.map((event) => Buffer.from(toBinary(StreamEventSchema, event)).toString("hex"));

/** Opens a Subscribe call on a raw HTTP/2 session that reads nothing: a 1 KiB window, the stream paused. */
function stalledSubscriber(url: string, streamId: string): { received(): Promise<Buffer>; close(): void } {
  const session = connect(url, { settings: { initialWindowSize: 1024 } });
  const body = toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, { streamId }));
  const stalled = session.request({
    ":method": "POST",
    ":path": "/mentatlab.v1.StreamService/Subscribe",
    "content-type": "application/connect+proto",
    authorization: "Bearer key-alice",
  });
  stalled.end(Buffer.concat([Buffer.from([0, 0, 0, 0, body.byteLength]), body]));
  stalled.pause();
  return {
    async received() {
      const chunks: Buffer[] = [];
      stalled.on("data", (chunk: Buffer) => chunks.push(chunk));
      stalled.resume();
      await within(new Promise((resolve) => stalled.once("end", resolve)), 5_000, "the stalled subscriber's end");
      return Buffer.concat(chunks);
    },
    close: () => session.close(),
  };
}

/** The enveloped messages of a Connect streaming response, then its end-of-stream error, if any. */
function connectStreamOf(received: Buffer): { events: number; error?: { code: string; message: string } } {
  let offset = 0;
  let events = 0;
  while (offset < received.byteLength && (received[offset] ?? 0) === 0) {
    fromBinary(StreamEventSchema, received.subarray(offset + 5, offset + 5 + received.readUInt32BE(offset + 1)));
    offset += 5 + received.readUInt32BE(offset + 1);
    events++;
  }
  expect(received[offset]).toBe(2);
  const end = JSON.parse(received.subarray(offset + 5).toString()) as { error?: { code: string; message: string } };
  return end.error ? { events, error: end.error } : { events };
}

/** Publishes `count` payloads one at a time on one Publish call; the time each took to be acknowledged. */
async function ackTimes(producer: Client<typeof StreamService>, streamId: string, count: number, bytes: number): Promise<number[]> {
  const requests = new Pushable<PublishMessage>();
  const acks = producer.publish(requests)[Symbol.asyncIterator]();
  requests.push({ part: { case: "open", value: { streamId } } });
  await acks.next();
  const times: number[] = [];
  for (let clientSeq = 1n; clientSeq <= BigInt(count); clientSeq++) {
    const sent = performance.now();
    requests.push(dataMessage(new Uint8Array(bytes), clientSeq));
    for (;;) {
      const { value, done } = await acks.next();
      if (done) throw new Error("Publish ended early");
      if (value.event.case === "ack" && value.event.value.lastClientSeq >= clientSeq) break;
    }
    times.push(performance.now() - sent);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  requests.end();
  while (!(await acks.next()).done);
  return times;
}

const median = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

async function failureOf(promise: Promise<unknown>): Promise<ConnectError | undefined> {
  return promise.then(
    () => undefined,
    (err: unknown) => ConnectError.from(err),
  );
}

describe("Subscribe on the encoded fast path", () => {
  it("delivers live and resumed events byte for byte as the Connect handler does, gzip'd text included", async () => {
    const { server } = await serve();
    const producer = clientOf(server.url, "grpc");
    const id = await openTextStream(producer);
    const live = fastKinds.map((kind) => collectEvents(clientOf(server.url, kind).subscribe({ streamId: id })));
    const texts = ["one", "two", "three ".repeat(200), "four"];
    for (const text of texts) await publish(producer, id, [text]);
    await producer.closeStream({ streamId: id });

    const reference = await collectEvents(clientOf(server.url, "connect-http1").subscribe({ streamId: id }));
    expect(reference.map((e) => e.event.case)).toEqual(["start", "data", "data", "data", "data", "end"]);
    for (const events of await within(Promise.all(live), 5_000, "live subscribers")) expect(wire(events)).toEqual(wire(reference));

    for (const acceptGzip of [false, true]) {
      const resumed = await collectEvents(clientOf(server.url, "connect-http1").subscribe({ streamId: id, afterSeq: 2n, acceptGzip }));
      expect(resumed[0]?.seq).toBe(3n);
      for (const kind of fastKinds) {
        const fast = await collectEvents(clientOf(server.url, kind).subscribe({ streamId: id, afterSeq: 2n, acceptGzip }));
        expect(wire(fast)).toEqual(wire(resumed));
      }
    }
    const gzipped = await collectEvents(clientOf(server.url, "grpc").subscribe({ streamId: id, afterSeq: 3n, acceptGzip: true }));
    expect(gzipped[0]?.event.case === "data" && gzipped[0].event.value.contentEncoding).toBe("gzip");
  });

  it("refuses callers and requests with the codes and messages of the Connect handler", async () => {
    const { server } = await serve({ retainedMaxEvents: 3 });
    const producer = clientOf(server.url, "grpc");
    const id = await openTextStream(producer);
    await publish(producer, id, ["a", "b", "c", "d", "e"]);
    const cases: { key?: string | null; streamId: string; afterSeq?: bigint; code: Code; says: string }[] = [
      { key: null, streamId: id, code: Code.Unauthenticated, says: "Authorization" },
      { key: "key-producer", streamId: id, code: Code.PermissionDenied, says: "stream:subscribe" },
      { key: "key-other", streamId: id, code: Code.NotFound, says: "not found in this workspace" },
      { streamId: "", code: Code.InvalidArgument, says: "stream_id" },
      { streamId: id, afterSeq: 99n, code: Code.OutOfRange, says: "past the newest event" },
      { streamId: id, afterSeq: 1n, code: Code.OutOfRange, says: "the oldest available is seq 4" },
    ];
    for (const c of cases) {
      const request = { streamId: c.streamId, afterSeq: c.afterSeq ?? 0n };
      const expected = await failureOf(collectEvents(clientOf(server.url, "connect-http1", c.key).subscribe(request)));
      expect(expected?.code).toBe(c.code);
      expect(expected?.rawMessage).toContain(c.says);
      for (const kind of fastKinds) {
        const got = await failureOf(collectEvents(clientOf(server.url, kind, c.key).subscribe(request)));
        expect({ kind, code: got?.code, message: got?.rawMessage }).toEqual({ kind, code: c.code, message: expected?.rawMessage });
        expect(got?.details.length).toBe(expected?.details.length);
      }
    }
  });

  it("serves grpc-js clients, errors included", async () => {
    const { server } = await serve();
    const producer = clientOf(server.url, "grpc");
    const id = await openTextStream(producer);
    await publish(producer, id, ["from grpc-js"]);
    await producer.closeStream({ streamId: id });
    const definition = await protoLoader.load(["mentatlab/v1/stream.proto"], {
      includeDirs: [join(process.cwd(), "proto"), join(process.cwd(), "proto-deps")],
      longs: String,
      enums: String,
      oneofs: true,
    });
    const loaded = grpc.loadPackageDefinition(definition) as unknown as {
      mentatlab: { v1: { StreamService: new (address: string, credentials: grpc.ChannelCredentials) => grpc.Client } };
    };
    const client = new loaded.mentatlab.v1.StreamService(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
    grpcClients.push(client);
    const subscribe = (request: object, key: string) => {
      const metadata = new grpc.Metadata();
      metadata.set("authorization", `Bearer ${key}`);
      const call = (client as unknown as Record<string, (r: object, m: grpc.Metadata) => grpc.ClientReadableStream<Record<string, unknown>>>).subscribe;
      return call?.call(client, request, metadata) as grpc.ClientReadableStream<{ seq: string; data?: { data: Buffer } }>;
    };
    const events: { seq: string; data?: { data: Buffer } }[] = [];
    for await (const event of subscribe({ streamId: id, afterSeq: 1 }, "key-alice")) events.push(event);
    expect(events.map((e) => e.seq)).toEqual(["2", "3"]);
    expect(events[0]?.data?.data.toString()).toBe("from grpc-js");
    const refused = await collectEvents(subscribe({ streamId: id }, "key-other") as unknown as AsyncIterable<StreamEvent>).catch(
      (err: grpc.ServiceError) => err,
    );
    expect(refused).toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it.each(["server", "stream service"] as const)("ends open subscriptions with UNAVAILABLE when the %s shuts down, never with OK", async (closing) => {
    const { server, runtime } = await serve({}, 100);
    const producer = clientOf(server.url, "grpc");
    const id = await openTextStream(producer);
    const subscriptions = fastKinds.map(async (kind) => {
      const events = clientOf(server.url, kind).subscribe({ streamId: id })[Symbol.asyncIterator]();
      expect((await events.next()).value?.seq).toBe(1n);
      return events;
    });
    const opened = await Promise.all(subscriptions);
    const pending = opened.map((events) => failureOf(events.next()));
    await (closing === "server" ? server.close() : runtime.close());
    for (const failure of await within(Promise.all(pending), 5_000, "shutdown")) {
      expect(failure?.code).toBe(Code.Unavailable);
      expect(failure?.rawMessage).toMatch(closing === "server" ? /server is shutting down/ : /resubscribe with after_seq/);
    }
  });

  it("lets a fast subscriber keep up while a stalled one is held to a bounded buffer, then told OUT_OF_RANGE", async () => {
    const { server } = await serve({ retainedMaxEvents: 20 });
    const producer = clientOf(server.url, "grpc");
    const id = await openTextStream(producer);
    const stalled = stalledSubscriber(server.url, id);
    const fast = collectEvents(clientOf(server.url, "connect-h2").subscribe({ streamId: id }));

    const payload = "x".repeat(1024);
    for (let batch = 0; batch < 100; batch++)
      await publish(
        producer,
        id,
        Array.from({ length: 10 }, () => payload),
      );
    await producer.closeStream({ streamId: id });
    const fastEvents = await within(fast, 5_000, "the fast subscriber");
    expect(fastEvents.length).toBe(1002);

    const received = await stalled.received();
    stalled.close();
    // 1000 KiB were published; what reached it is bounded by flow control and Node's stream buffers.
    expect(received.byteLength).toBeLessThan(128 * 1024);
    const { events, error } = connectStreamOf(received);
    expect(events).toBeGreaterThan(0);
    expect(error?.code).toBe("out_of_range");
    expect(error?.message).toContain("the oldest available is seq");
  });

  it("keeps acks prompt while 50 subscribers follow and a stalled one is cut off at its byte budget", async () => {
    const { server } = await serve({ subscriberMaxLagBytes: 16 * 1024 });
    const producer = clientOf(server.url, "grpc");
    const quiet = await openTextStream(producer);
    const alone = median(await ackTimes(producer, quiet, 100, 512));

    const id = await openTextStream(producer);
    const stalled = stalledSubscriber(server.url, id);
    const followers = Array.from({ length: 50 }, () => clientOf(server.url, "connect-h2").subscribe({ streamId: id })[Symbol.asyncIterator]());
    for (const follower of followers) expect((await within(follower.next(), 5_000, "stream_start")).value?.seq).toBe(1n);
    const delivered = followers.map(async (follower) => {
      let count = 1;
      while (!(await follower.next()).done) count++;
      return count;
    });
    const watched = median(await ackTimes(producer, id, 300, 512));
    await producer.closeStream({ streamId: id });
    for (const count of await within(Promise.all(delivered), 10_000, "the followers")) expect(count).toBe(302);
    // Fan-out runs after the ack's turn: 50 subscribers and a stalled one cost the producer almost nothing.
    expect(watched).toBeLessThan(alone + 20);

    const { events, error } = connectStreamOf(await stalled.received());
    stalled.close();
    expect(events).toBeGreaterThan(0);
    expect(events).toBeLessThan(302);
    expect(error?.code).toBe("out_of_range");
    expect(error?.message).toContain("fell more than 16384 bytes behind");
    expect(error?.message).toContain("the oldest available is seq 1");
  });
});
