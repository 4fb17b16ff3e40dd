import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { PinType } from "../../gen/mentatlab/v1/common_pb.js";
import { type StreamEvent, StreamService } from "../../gen/mentatlab/v1/stream_pb.js";
import { type RedisServer, startRedis } from "../../test/harness/index.js";
import { attachPrincipal, testPrincipal } from "../../test/support/in-memory.js";
import { type RunningServer, startServer } from "../server/server.js";
import { createStreams, type StreamRuntime } from "./index.js";
import { newStreamId } from "./stream-id.js";
import { clientFor, dataMessage, type PublishMessage, Pushable, testStreamConfig, within } from "./testing.js";

// Real redis-server killed, frozen, flushed and restarted under live publishers, subscribers and
// watchers. Every call must answer within the bound (REDIS_TIMEOUT_MS, here 1 s) and work again once
// Redis is back.

const BOUND_MS = 1_000;
// How late past the bound a call may report on a loaded 2-core machine (timers, event loop).
const SLACK_MS = 600;
// ioredis reconnects every 500 ms at most; the first call after that must succeed.
const BACK_WITHIN_MS = 1_500;
const OUTAGE_MS = 3_000;

const servers: RedisServer[] = [];
const runtimes: StreamRuntime[] = [];
const listening: RunningServer[] = [];
afterEach(async () => {
  await Promise.all(listening.splice(0).map((l) => l.close()));
  await Promise.all(runtimes.splice(0).map((r) => r.close()));
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

/** Durable (AOF fsynced before every reply, as the dev overlay runs it) or holding nothing across restarts. */
async function redisServer(persistence: boolean): Promise<RedisServer> {
  const server = await startRedis({ persistence, appendfsync: "always" });
  servers.push(server);
  return server;
}

/** Two stream replicas sharing `redis`, as behind a load balancer. */
async function replicas(redis: RedisServer): Promise<[StreamRuntime, StreamRuntime]> {
  const config = testStreamConfig({ redisUrl: redis.url, redisTimeoutMs: BOUND_MS });
  const pair: [StreamRuntime, StreamRuntime] = [await createStreams(config), await createStreams(config)];
  runtimes.push(...pair);
  return pair;
}

/** `runtime` on the one-port server, Subscribe on its encoded fast path, as the mesh serves it. */
async function listen(runtime: StreamRuntime): Promise<RunningServer> {
  const principal = testPrincipal({ user: "alice", workspace: "ws-faults" });
  const server = await startServer({
    port: 0,
    routes: (router) => router.service(StreamService, runtime.impl),
    interceptors: [attachPrincipal(principal)],
    httpRoutes: runtime.routes,
    encodedStreams: runtime.encodedStreams,
    authenticateHttp: async () => principal,
    uncompressedServices: [StreamService.typeName],
    shutdownGraceMs: 500,
  });
  listening.push(server);
  return server;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const label = (i: number) => `m${i}`;
const errorOf = (err: unknown) => ConnectError.from(err);

/** The times one call attempt showed life (opened, got a message, failed or ended), and whether it is over. */
interface Attempt {
  readonly times: number[];
  ended: boolean;
}

function attemptStarted(attempts: Attempt[]): Attempt {
  const attempt = { times: [Date.now()], ended: false };
  attempts.push(attempt);
  return attempt;
}

function sawLife(attempt: Attempt, ended = false): void {
  attempt.times.push(Date.now());
  attempt.ended ||= ended;
}

/**
 * How long any attempt went without a sign of life inside [from, to], the window in which Redis was
 * away: an attempt waiting then must be told within the bound, and one opened then must fail fast.
 * Attempts still open at `to` count as silent until `to`.
 */
function longestSilence(attempts: readonly Attempt[], from: number, to: number): number {
  let longest = 0;
  for (const attempt of attempts) {
    const times = attempt.ended ? attempt.times : [...attempt.times, to];
    for (let i = 1; i < times.length; i++) {
      const start = Math.max(times[i - 1] as number, from);
      const end = Math.min(times[i] as number, to);
      if (end > start) longest = Math.max(longest, end - start);
    }
  }
  return longest;
}

interface Follower {
  readonly events: StreamEvent[];
  readonly attempts: Attempt[];
  readonly codes: Code[];
  /** Settles once the stream ended, or with the first error that is not UNAVAILABLE. */
  readonly done: Promise<ConnectError | undefined>;
}

/** Follows a stream as a well-behaved client does: after UNAVAILABLE it resubscribes after the last seq it got. */
function follow(runtime: StreamRuntime, streamId: string): Follower {
  const events: StreamEvent[] = [];
  const attempts: Attempt[] = [];
  const codes: Code[] = [];
  const done = (async () => {
    for (;;) {
      const attempt = attemptStarted(attempts);
      try {
        for await (const event of clientFor(runtime).subscribe({ streamId, afterSeq: events.at(-1)?.seq ?? 0n })) {
          sawLife(attempt);
          events.push(event);
          if (event.event.case === "end" || event.event.case === "error") return undefined;
        }
        sawLife(attempt, true);
        return new ConnectError("Subscribe ended without stream_end", Code.Internal);
      } catch (err) {
        sawLife(attempt, true);
        const error = errorOf(err);
        codes.push(error.code);
        if (error.code !== Code.Unavailable) return error;
      }
      await sleep(50);
    }
  })();
  return { events, attempts, codes, done };
}

/** Watches announcements until `stop` aborts, reopening the watch after UNAVAILABLE as a client would. */
function watchAnnouncements(runtime: StreamRuntime, stop: AbortSignal): { attempts: Attempt[]; codes: Code[]; done: Promise<void> } {
  const attempts: Attempt[] = [];
  const codes: Code[] = [];
  const done = (async () => {
    while (!stop.aborted) {
      const attempt = attemptStarted(attempts);
      try {
        for await (const announcement of clientFor(runtime).watchStreams({}, { signal: stop })) {
          void announcement;
          sawLife(attempt);
        }
        sawLife(attempt, true);
      } catch (err) {
        sawLife(attempt, true);
        if (!stop.aborted) codes.push(errorOf(err).code);
      }
      await sleep(50);
    }
  })();
  return { attempts, codes, done };
}

function dataLabels(events: readonly StreamEvent[]): string[] {
  return events.flatMap((e) => (e.event.case === "data" ? [new TextDecoder().decode(e.event.value.data)] : []));
}

function expectGapFree(events: readonly StreamEvent[], count: number): void {
  expect(events.map((e) => e.seq)).toEqual(Array.from({ length: events.length }, (_, i) => BigInt(i + 1)));
  expect(dataLabels(events)).toEqual(Array.from({ length: count }, (_, i) => label(i + 1)));
}

/**
 * A producer on the bidirectional Publish call sending payloads 1..count one at a time, each awaited
 * to its ack; after any error it reopens the call and resends what the first ack says is missing.
 */
function produce(runtime: StreamRuntime, streamId: string, count: number, onAck: (acked: number) => void) {
  const attempts: Attempt[] = [];
  const codes: Code[] = [];
  const done = (async () => {
    let acked = 0;
    while (acked < count) {
      const attempt = attemptStarted(attempts);
      const requests = new Pushable<PublishMessage>();
      const responses = clientFor(runtime).publish(requests)[Symbol.asyncIterator]();
      try {
        requests.push({ part: { case: "open", value: { streamId } } });
        const first = await responses.next();
        sawLife(attempt);
        if (first.value?.event.case === "ack") acked = Number(first.value.event.value.lastClientSeq);
        while (acked < count) {
          requests.push(dataMessage(label(acked + 1), BigInt(acked + 1)));
          const reply = await responses.next();
          sawLife(attempt);
          if (reply.done) throw new Error("Publish ended early");
          if (reply.value.event.case === "ack") acked = Number(reply.value.event.value.lastClientSeq);
          onAck(acked);
          await sleep(3);
        }
        requests.end();
        await responses.next();
        sawLife(attempt, true);
      } catch (err) {
        sawLife(attempt, true);
        codes.push(errorOf(err).code);
        requests.end();
        await sleep(50);
      }
    }
  })();
  return { attempts, codes, done };
}

describe("stream service with Redis killed, restarted, frozen or emptied", () => {
  it("kill -9 mid-stream (AOF, appendfsync always): every call hears UNAVAILABLE within the bound, then all resume and nothing acknowledged is lost", async () => {
    const redis = await redisServer(true);
    const [a, b] = await replicas(redis);
    const streamId = (await clientFor(a).initStream({ payloadType: PinType.TEXT })).stream?.ref?.streamId ?? "";
    const followers = [follow(b, streamId), follow(b, streamId), follow(a, streamId)];
    const stopWatching = new AbortController();
    const watcher = watchAnnouncements(b, stopWatching.signal);
    const count = 300;
    let killedAt = 0;
    let backAt = 0;
    let ackedAtKill = 0;
    let outage: Promise<void> | undefined;
    const producer = produce(a, streamId, count, (acked) => {
      if (acked < 100 || outage) return;
      ackedAtKill = acked;
      outage = (async () => {
        killedAt = Date.now();
        await redis.kill();
        await sleep(OUTAGE_MS);
        await redis.start();
        backAt = Date.now();
      })();
    });
    await within(producer.done, 30_000, "producer");
    await outage;
    await clientFor(a).closeStream({ streamId });
    for (const follower of followers) expect(await within(follower.done, 10_000, "follower")).toBeUndefined();

    expect(ackedAtKill).toBeGreaterThanOrEqual(100);
    expect(producer.codes).toContain(Code.Unavailable);
    expect(producer.codes.every((c) => c === Code.Unavailable)).toBe(true);
    expect(longestSilence(producer.attempts, killedAt, backAt)).toBeLessThanOrEqual(BOUND_MS + SLACK_MS);
    for (const follower of followers) {
      expect(follower.codes).toContain(Code.Unavailable);
      expect(longestSilence(follower.attempts, killedAt, backAt)).toBeLessThanOrEqual(BOUND_MS + SLACK_MS);
      expectGapFree(follower.events, count);
    }
    stopWatching.abort();
    await watcher.done;
    expect(watcher.codes).toContain(Code.Unavailable);
    expect(watcher.codes.every((c) => c === Code.Unavailable)).toBe(true);
    expect(longestSilence(watcher.attempts, killedAt, backAt)).toBeLessThanOrEqual(BOUND_MS + SLACK_MS);
    // What was acknowledged came back from the append-only file, not from a replica's memory.
    const [fresh] = await replicas(redis);
    const replay: StreamEvent[] = [];
    for await (const event of clientFor(fresh).subscribe({ streamId })) replay.push(event);
    expectGapFree(replay, count);
  });

  it("Redis restarted without its data: live subscribers are told the stream's data was lost (DATA_LOSS), not that it ended", async () => {
    const redis = await redisServer(false);
    const [a, b] = await replicas(redis);
    const producer = clientFor(a);
    const streamId = (await producer.initStream({ payloadType: PinType.TEXT })).stream?.ref?.streamId ?? "";
    const payloads = Array.from({ length: 10 }, (_, i) => ({ data: new TextEncoder().encode(label(i + 1)), clientSeq: BigInt(i + 1) }));
    await producer.publishBatch({ streamId, payloads });
    const followers = [follow(a, streamId), follow(b, streamId)];
    while (followers.some((f) => f.events.length < 11)) await sleep(10);

    await redis.restart();
    const backAt = Date.now();
    for (const follower of followers) {
      const error = await within(follower.done, 10_000, "follower");
      expect(error?.code).toBe(Code.DataLoss);
      expect(error?.rawMessage).toContain(`the data of stream "${streamId}" was lost`);
      expect(error?.rawMessage).toContain("the stream did not end");
      expect(follower.attempts.at(-1)?.times.at(-1) ?? Infinity).toBeLessThanOrEqual(backAt + BACK_WITHIN_MS);
      expect(dataLabels(follower.events)).toEqual(payloads.map((_, i) => label(i + 1)));
    }
    // The producer and every other caller get the same answer, and nothing new is created for it.
    const publishError = await producer.publishBatch({ streamId, payloads }).catch(errorOf);
    expect(publishError).toMatchObject({ code: Code.DataLoss });
    expect(await producer.getStream({ streamId }).catch(errorOf)).toMatchObject({ code: Code.DataLoss });
    const probe = new Redis(redis.url);
    try {
      expect(await probe.keys(`*${streamId}*`)).toEqual([]);
    } finally {
      probe.disconnect();
    }
    // A stream that never existed is still NOT_FOUND, and new streams work.
    expect(await producer.getStream({ streamId: newStreamId(Date.now()) }).catch(errorOf)).toMatchObject({ code: Code.NotFound });
    const next = (await producer.initStream({ payloadType: PinType.TEXT })).stream?.ref?.streamId ?? "";
    await producer.publishBatch({ streamId: next, payloads });
    await producer.closeStream({ streamId: next });
    const replay: StreamEvent[] = [];
    for await (const event of clientFor(b).subscribe({ streamId: next })) replay.push(event);
    expectGapFree(replay, 10);
  });

  it("a stream's data removed under live subscribers (FLUSHALL) is reported to them as DATA_LOSS within the bound", async () => {
    const redis = await redisServer(false);
    const [a] = await replicas(redis);
    const streamId = (await clientFor(a).initStream({ payloadType: PinType.TEXT })).stream?.ref?.streamId ?? "";
    const follower = follow(a, streamId);
    while (follower.events.length < 1) await sleep(10);
    const probe = new Redis(redis.url);
    const flushedAt = Date.now();
    try {
      await probe.flushall();
    } finally {
      probe.disconnect();
    }
    const error = await within(follower.done, 5_000, "follower");
    expect(error?.code).toBe(Code.DataLoss);
    expect(follower.attempts.at(-1)?.times.at(-1) ?? Infinity).toBeLessThanOrEqual(flushedAt + BOUND_MS + SLACK_MS);
  });

  it("while Redis is down every call answers UNAVAILABLE within the bound, and succeeds again as soon as Redis is back", async () => {
    const redis = await redisServer(true);
    const [a] = await replicas(redis);
    const client = clientFor(a);
    const streamId = (await client.initStream({ payloadType: PinType.TEXT })).stream?.ref?.streamId ?? "";
    const payloads = [{ data: new TextEncoder().encode("x"), clientSeq: 1n }];
    const calls: Record<string, () => Promise<unknown>> = {
      InitStream: () => client.initStream({ payloadType: PinType.TEXT }),
      GetStream: () => client.getStream({ streamId }),
      ListStreams: () => client.listStreams({}),
      PublishBatch: () => client.publishBatch({ streamId, payloads }),
      Publish: async () => {
        const requests = new Pushable<PublishMessage>();
        requests.push({ part: { case: "open", value: { streamId } } });
        requests.push(dataMessage("y", 2n));
        requests.end();
        for await (const reply of client.publish(requests)) void reply;
      },
      Subscribe: async () => {
        // Open streams never end by themselves: the first event proves the call works.
        for await (const event of client.subscribe({ streamId })) return event;
      },
      WatchStreams: async () => {
        for await (const announcement of client.watchStreams({})) return announcement;
      },
    };
    await redis.kill();
    for (const [name, call] of Object.entries(calls)) {
      const started = Date.now();
      const error = await within(
        call().then(() => undefined, errorOf),
        BOUND_MS + SLACK_MS + 1_000,
        name,
      );
      expect([name, error?.code]).toEqual([name, Code.Unavailable]);
      expect(Date.now() - started, name).toBeLessThanOrEqual(BOUND_MS + SLACK_MS);
    }
    await redis.start();
    const backAt = Date.now();
    for (const [name, call] of Object.entries(calls)) {
      for (;;) {
        const error = await within(
          call().then(() => undefined, errorOf),
          BOUND_MS + SLACK_MS,
          name,
        );
        if (!error) break;
        expect([name, error.code]).toEqual([name, Code.Unavailable]);
        expect(Date.now() - backAt, `${name} still failing: ${error.rawMessage}`).toBeLessThanOrEqual(BACK_WITHIN_MS);
        await sleep(20);
      }
    }
  });

  it("a frozen Redis (connected, answering nothing) turns into UNAVAILABLE within the bound for callers and live subscribers", async () => {
    const redis = await redisServer(false);
    const [a] = await replicas(redis);
    const client = clientFor(a);
    const streamId = (await client.initStream({ payloadType: PinType.TEXT })).stream?.ref?.streamId ?? "";
    const follower = follow(a, streamId);
    while (follower.events.length < 1) await sleep(10);
    redis.freeze();
    const frozenAt = Date.now();
    try {
      const started = Date.now();
      expect(await client.getStream({ streamId }).catch(errorOf)).toMatchObject({ code: Code.Unavailable });
      expect(Date.now() - started).toBeLessThanOrEqual(BOUND_MS + SLACK_MS);
      while (!follower.codes.includes(Code.Unavailable) && Date.now() - frozenAt < 5_000) await sleep(10);
      expect(follower.codes).toContain(Code.Unavailable);
      expect(longestSilence(follower.attempts, frozenAt, Date.now())).toBeLessThanOrEqual(BOUND_MS + SLACK_MS);
    } finally {
      redis.thaw();
    }
    const payloads = [{ data: new TextEncoder().encode(label(1)), clientSeq: 1n }];
    const deadline = Date.now() + 5_000;
    while ((await client.publishBatch({ streamId, payloads }).catch(errorOf)) instanceof ConnectError) {
      expect(Date.now()).toBeLessThan(deadline);
      await sleep(50);
    }
    await client.closeStream({ streamId });
    expect(await within(follower.done, 5_000, "follower")).toBeUndefined();
    expectGapFree(follower.events, 1);
  });

  it("over real sockets: gRPC subscribers and watchers hear UNAVAILABLE, then DATA_LOSS after an empty restart, as SSE readers do", async () => {
    const redis = await redisServer(false);
    const [runtime] = await replicas(redis);
    const server = await listen(runtime);
    const grpc = createClient(StreamService, createGrpcTransport({ baseUrl: server.url }));
    const streamId = (await grpc.initStream({ payloadType: PinType.TEXT })).stream?.ref?.streamId ?? "";
    await grpc.publishBatch({ streamId, payloads: [{ data: new TextEncoder().encode(label(1)), clientSeq: 1n }] });
    const live = grpc.subscribe({ streamId })[Symbol.asyncIterator]();
    expect((await within(live.next(), 5_000, "stream_start")).value?.event.case).toBe("start");
    expect((await within(live.next(), 5_000, "stream_data")).value?.event.case).toBe("data");
    const watch = grpc.watchStreams({})[Symbol.asyncIterator]();
    expect((await within(watch.next(), 5_000, "announcement")).value?.stream?.ref?.streamId).toBe(streamId);

    await redis.shutdown();
    const downAt = Date.now();
    const subscribeError = await within(
      live.next().then(() => undefined, errorOf),
      BOUND_MS + SLACK_MS,
      "Subscribe",
    );
    const watchError = await within(
      watch.next().then(() => undefined, errorOf),
      BOUND_MS + SLACK_MS,
      "WatchStreams",
    );
    expect([subscribeError?.code, watchError?.code]).toEqual([Code.Unavailable, Code.Unavailable]);
    expect(subscribeError?.rawMessage).toContain("resubscribe with after_seq");
    expect(Date.now() - downAt).toBeLessThanOrEqual(BOUND_MS + SLACK_MS);

    await redis.start();
    const backAt = Date.now();
    let resubscribed: ConnectError | undefined;
    do {
      await sleep(50);
      resubscribed = await grpc
        .subscribe({ streamId, afterSeq: 2n })
        [Symbol.asyncIterator]()
        .next()
        .then(() => undefined, errorOf);
    } while (resubscribed?.code === Code.Unavailable && Date.now() - backAt < BACK_WITHIN_MS);
    expect(resubscribed?.code).toBe(Code.DataLoss);
    expect(resubscribed?.rawMessage).toContain(`the data of stream "${streamId}" was lost`);
    const sse = await fetch(`${server.url}/streams/${streamId}/events`, { headers: { "last-event-id": "2" } });
    expect(sse.status).toBe(500);
    expect(await sse.json()).toMatchObject({ code: "data_loss" });
  });
});
