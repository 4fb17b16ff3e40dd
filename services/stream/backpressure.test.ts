import type { MessageInitShape } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { BackpressurePolicy, PinType } from "../../gen/mentatlab/v1/common_pb.js";
import { type StreamConsumerSchema, type StreamEvent, StreamService, StreamState } from "../../gen/mentatlab/v1/stream_pb.js";
import { type RedisServer, startRedis } from "../../test/harness/index.js";
import { testPrincipal } from "../../test/support/in-memory.js";
import type { RunningServer } from "../server/server.js";
import { principalKey } from "../shared/principal.js";
import type { StreamConfig } from "./config.js";
import type { StreamRuntime } from "./index.js";
import { dataMessage, type PublishMessage, Pushable, serveOverSockets, within } from "./testing.js";

// Flow control of stream edges over real sockets (the one-port server, gRPC clients with HTTP/2 flow
// control), on both stores: a downstream agent of run "r1" subscribes with its node's run token, as its
// sidecar does; "alice" without a run token is a browser or the CLI.

const RUN = "r1";
const WINDOW = 64 * 1024;
const CHUNK = 8 * 1024;
const CHUNKS = 256;
const TOTAL = CHUNK * CHUNKS;
// What the transports between the stream service and a stalled reader hold beyond its window: the
// reader's HTTP/2 stream window, its socket's and the server's write buffers.
const IN_FLIGHT = 1024 * 1024;

let redis: RedisServer;
let prefixes = 0;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

let running: { server: RunningServer; runtime: StreamRuntime } | undefined;
afterEach(async () => {
  await running?.server.close();
  await running?.runtime.close();
  running = undefined;
});

/** A bearer token `node` is that node's run token in run r1; `user:<name>` is a user's key. */
const principalFromBearer: Interceptor = (next) => (req) => {
  const token = req.header.get("authorization")?.replace(/^Bearer /, "") ?? "";
  const principal = token.startsWith("user:")
    ? testPrincipal({ workspace: "ws-flow", user: token.slice(5) })
    : testPrincipal({ workspace: "ws-flow", run: { runId: RUN, nodeId: token, attempt: 1 } });
  req.contextValues.set(principalKey, principal);
  return next(req);
};

async function serve(config: Partial<StreamConfig>): Promise<string> {
  const served = await serveOverSockets(config, principalFromBearer);
  running = served;
  return served.server.url;
}

function clientAs(token: string, baseUrl: string): Client<typeof StreamService> {
  return createClient(
    StreamService,
    createGrpcTransport({ baseUrl, interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${token}`), next(req))] }),
  );
}

async function openStream(producer: Client<typeof StreamService>, consumers: MessageInitShape<typeof StreamConsumerSchema>[]): Promise<string> {
  const { stream } = await producer.initStream({ payloadType: PinType.BINARY, runId: RUN, nodeId: "producer", pin: "out", consumers });
  return stream?.ref?.streamId ?? "";
}

interface Production {
  /** Resolves once every payload was acknowledged; rejects with the call's error. */
  readonly done: Promise<void>;
}

/** Publishes CHUNKS payloads of CHUNK bytes (byte i of chunk n is n) as fast as the call takes them. */
function produce(producer: Client<typeof StreamService>, streamId: string): Production {
  const requests = new Pushable<PublishMessage>();
  requests.push({ part: { case: "open", value: { streamId } } });
  for (let n = 1; n <= CHUNKS; n++) requests.push(dataMessage(new Uint8Array(CHUNK).fill(n % 256), BigInt(n)));
  requests.end();
  const done = (async () => {
    for await (const response of producer.publish(requests)) {
      if (response.event.case === "ack" && response.event.value.lastClientSeq === BigInt(CHUNKS)) return;
    }
    throw new Error("Publish ended before every payload was acknowledged");
  })();
  return { done };
}

/** A subscriber that reads stream_start, then stops reading until `resume()`; then reads to the end. */
function stalledReader(client: Client<typeof StreamService>, streamId: string) {
  const iterator = client.subscribe({ streamId }, { signal: AbortSignal.timeout(60_000) })[Symbol.asyncIterator]();
  const events: StreamEvent[] = [];
  const stalled = (async () => {
    while (events.length < 1) {
      const next = await iterator.next();
      if (next.done) throw new Error("the stream ended before the reader stalled");
      events.push(next.value);
    }
  })();
  return {
    stalled,
    async resume(): Promise<{ events: StreamEvent[]; error?: ConnectError }> {
      await stalled;
      try {
        for (let next = await iterator.next(); !next.done; next = await iterator.next()) events.push(next.value);
        return { events };
      } catch (err) {
        return { events, error: ConnectError.from(err) };
      }
    },
  };
}

/** The stream's published bytes once they stopped growing for a while (a held producer's). */
/** A stream of run r1 declaring `consumer`, and a subscriber per token that read stream_start and then stalled. */
async function stalledStream(config: Partial<StreamConfig>, consumer: MessageInitShape<typeof StreamConsumerSchema>, tokens = ["reader"]) {
  const url = await serve({ subscriberMaxLagBytes: 128 * 1024, ...config });
  const producer = clientAs("producer", url);
  const streamId = await openStream(producer, [consumer]);
  const readers = tokens.map((token) => stalledReader(clientAs(token, url), streamId));
  await within(Promise.all(readers.map((r) => r.stalled)), 5_000, "the subscribers' first event");
  const [reader] = readers;
  if (!reader) throw new Error("name at least one subscriber");
  return { producer, streamId, reader, readers };
}

async function publishedOnceSettled(client: Client<typeof StreamService>, streamId: string): Promise<bigint> {
  let last = -1n;
  let stableSince = Date.now();
  for (;;) {
    const published = (await client.getStream({ streamId })).stream?.bytesPublished ?? 0n;
    if (published === BigInt(TOTAL)) return published;
    if (published !== last) {
      last = published;
      stableSince = Date.now();
    } else if (Date.now() - stableSince > 500) {
      return published;
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function payloadBytes(events: readonly StreamEvent[]): Uint8Array[] {
  return events.flatMap((e) => (e.event.case === "data" ? [e.event.value.data] : []));
}

async function rejection(promise: Promise<unknown>): Promise<ConnectError | undefined> {
  return promise.then(
    () => undefined,
    (err: unknown) => ConnectError.from(err),
  );
}

const blockingReader = { nodeId: "reader", policy: BackpressurePolicy.BLOCK, windowBytes: BigInt(WINDOW) };

describe.each([
  ["memory", () => ({})],
  ["redis", () => ({ redisUrl: redis.url, redisKeyPrefix: `bp${++prefixes}:` })],
] as const)("stream edge flow control on the %s store", (_name, backend) => {
  it("block: holds the producer while the downstream agent is a window behind, then delivers every byte once", async () => {
    const { producer, streamId, reader } = await stalledStream(backend(), blockingReader);
    const production = produce(producer, streamId);

    const held = await publishedOnceSettled(producer, streamId);
    expect(held).toBeGreaterThan(0n);
    expect(held).toBeLessThanOrEqual(BigInt(WINDOW + IN_FLIGHT));
    let finished = false;
    void production.done.then(() => (finished = true));
    expect(finished).toBe(false);

    const resumed = reader.resume();
    await within(production.done, 10_000, "the producer's last ack once the reader reads");
    await producer.closeStream({ streamId });
    const { events, error } = await within(resumed, 10_000, "the reader's events to the end");
    expect(error).toBeUndefined();
    const payloads = payloadBytes(events);
    expect(payloads.length).toBe(CHUNKS);
    payloads.forEach((data, i) => expect(data[0]).toBe((i + 1) % 256));
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: CHUNKS + 2 }, (_, i) => BigInt(i + 1)));
    expect(events[events.length - 1]?.event.case).toBe("end");
  });

  it("block: a browser or CLI subscriber and an undeclared node never hold the producer back", async () => {
    const { producer, streamId, readers } = await stalledStream(backend(), blockingReader, ["user:alice", "other"]);
    await within(produce(producer, streamId).done, 10_000, "every ack with only ordinary subscribers stalled");
    // They are cut off as any slow subscriber is, naming the oldest seq they can resume from.
    for (const stalled of readers) {
      const { error } = await stalled.resume();
      expect(error?.code).toBe(Code.OutOfRange);
      expect(error?.rawMessage).toMatch(/fell more than 131072 bytes behind .* the oldest available is seq 1\b/);
    }
  });

  it("drop_oldest: the slow downstream agent gets OUT_OF_RANGE naming the oldest retained seq; the producer runs free", async () => {
    const { producer, streamId, reader } = await stalledStream(
      { ...backend(), retainedMaxEvents: 100 },
      { nodeId: "reader", policy: BackpressurePolicy.DROP_OLDEST },
    );
    await within(produce(producer, streamId).done, 10_000, "every ack");
    const oldest = (await producer.getStream({ streamId })).stream?.firstRetainedSeq ?? 0n;
    expect(oldest).toBeGreaterThan(3n);
    const { error } = await reader.resume();
    expect(error?.code).toBe(Code.OutOfRange);
    expect(error?.rawMessage).toContain(`the oldest available is seq ${oldest}`);
  });

  it("fail: the stream fails with stream_error once the downstream agent is a window behind, and the producer's call with it", async () => {
    const { producer, streamId, reader } = await stalledStream(backend(), { nodeId: "reader", policy: BackpressurePolicy.FAIL, windowBytes: BigInt(WINDOW) });
    const failed = await within(rejection(produce(producer, streamId).done), 10_000, "the producer's failure");
    expect(failed?.code).toBe(Code.FailedPrecondition);
    expect(failed?.rawMessage).toMatch(/downstream agent "reader" fell \d+ bytes behind stream .* 65536-byte window.*backpressure: fail/);
    expect((await producer.getStream({ streamId })).stream?.state).toBe(StreamState.FAILED);

    // It is not cut off for lagging: it reads what was stored, then the stream's error.
    const { events, error } = await reader.resume();
    expect(error).toBeUndefined();
    const last = events[events.length - 1];
    expect(last?.event.case).toBe("error");
    expect(last?.event.case === "error" && last.event.value).toMatchObject({ code: "failed_precondition", message: failed?.rawMessage });
  });
});

describe("InitStream consumers", () => {
  it("are only accepted from a run token, each node once, before anything is created", async () => {
    const url = await serve({});
    const asUser = await rejection(
      clientAs("user:alice", url).initStream({ payloadType: PinType.TEXT, consumers: [{ nodeId: "reader", policy: BackpressurePolicy.BLOCK }] }),
    );
    expect(asUser?.code).toBe(Code.PermissionDenied);
    expect(asUser?.rawMessage).toContain("only be declared with a run token");
    const twice = await rejection(
      openStream(clientAs("producer", url), [
        { nodeId: "reader", policy: BackpressurePolicy.BLOCK },
        { nodeId: "reader", policy: BackpressurePolicy.FAIL },
      ]),
    );
    expect(twice?.code).toBe(Code.InvalidArgument);
    expect(twice?.rawMessage).toContain('consumers[1].node_id "reader" is declared twice');
    expect((await clientAs("user:alice", url).listStreams({})).streams).toEqual([]);
    const created = await clientAs("producer", url).initStream({
      payloadType: PinType.TEXT,
      runId: RUN,
      consumers: [{ nodeId: "reader", policy: BackpressurePolicy.BLOCK }],
    });
    expect(created.stream?.consumers).toMatchObject([{ nodeId: "reader", policy: BackpressurePolicy.BLOCK }]);
  });
});
