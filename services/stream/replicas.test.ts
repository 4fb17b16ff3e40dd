import { Code, ConnectError } from "@connectrpc/connect";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PinType } from "../../gen/mentatlab/v1/common_pb.js";
import { type PublishResponse, StreamAnnouncementKind, type StreamEvent } from "../../gen/mentatlab/v1/stream_pb.js";
import { type RedisServer, startRedis } from "../../test/harness/index.js";
import { createStreams, type StreamRuntime } from "./index.js";
import { clientFor, dataMessage, type PublishMessage, Pushable, testStreamConfig, within } from "./testing.js";

// Two StreamRuntimes sharing one Redis stand for two replicas behind a load balancer.

let redis: RedisServer;
let prefixes = 0;
const runtimes: StreamRuntime[] = [];

beforeAll(async () => {
  redis = await startRedis({ persistence: true });
});
afterAll(async () => {
  await redis?.stop();
});
afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((r) => r.close()));
});

async function replicas(keyPrefix = `rep${++prefixes}:`): Promise<[StreamRuntime, StreamRuntime]> {
  const config = testStreamConfig({ redisUrl: redis.url, redisKeyPrefix: keyPrefix });
  const pair: [StreamRuntime, StreamRuntime] = [await createStreams(config), await createStreams(config)];
  runtimes.push(...pair);
  return pair;
}

async function serverPid(): Promise<string> {
  const probe = new Redis(redis.url);
  try {
    return /process_id:(\d+)/.exec(await probe.info("server"))?.[1] ?? "";
  } finally {
    probe.disconnect();
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const label = (i: number) => `m${i}`;

function dataLabels(events: readonly StreamEvent[]): string[] {
  return events.flatMap((e) => (e.event.case === "data" ? [new TextDecoder().decode(e.event.value.data)] : []));
}

/**
 * Follows a stream to its end the way a well-behaved client does: on any failure it resubscribes
 * after the last seq it received. Optionally drops its own connection after `dropAfter` events.
 */
async function followToEnd(
  subscribe: (afterSeq: bigint, signal: AbortSignal) => AsyncIterable<StreamEvent>,
  dropAfter?: number,
): Promise<{ events: StreamEvent[]; reconnects: number }> {
  const events: StreamEvent[] = [];
  let reconnects = 0;
  for (;;) {
    const call = new AbortController();
    try {
      for await (const event of subscribe(events.at(-1)?.seq ?? 0n, call.signal)) {
        events.push(event);
        if (event.event.case === "end" || event.event.case === "error") return { events, reconnects };
        if (events.length === dropAfter) call.abort(new Error("connection dropped"));
      }
    } catch (err) {
      if (ConnectError.from(err).code === Code.OutOfRange) throw err;
    }
    reconnects++;
    await sleep(50);
  }
}

function expectGapFree(events: readonly StreamEvent[], count: number): void {
  expect(events.map((e) => e.seq)).toEqual(Array.from({ length: events.length }, (_, i) => BigInt(i + 1)));
  expect(dataLabels(events)).toEqual(Array.from({ length: count }, (_, i) => label(i + 1)));
}

async function drain(responses: AsyncIterator<PublishResponse>): Promise<void> {
  for (;;) if ((await responses.next()).done) return;
}

describe("stream replicas sharing Redis", () => {
  it("delivers a stream published through one replica to subscribers of the other, live and in order", async () => {
    const [a, b] = await replicas();
    const producer = clientFor(a);
    const consumer = clientFor(b);
    const watch = consumer.watchStreams({})[Symbol.asyncIterator]();
    const id = (await producer.initStream({ payloadType: PinType.TEXT })).stream?.ref?.streamId ?? "";
    const announced = (await within(watch.next(), 5_000, "watch")).value;
    expect(announced).toMatchObject({ kind: StreamAnnouncementKind.AVAILABLE, stream: { ref: { streamId: id } } });

    const subscribers = Array.from({ length: 5 }, () => followToEnd((after, signal) => consumer.subscribe({ streamId: id, afterSeq: after }, { signal })));
    await sleep(50);
    const requests = new Pushable<PublishMessage>();
    const responses = producer.publish(requests)[Symbol.asyncIterator]();
    requests.push({ part: { case: "open", value: { streamId: id } } });
    const count = 2_000;
    for (let i = 1; i <= count; i++) {
      requests.push(dataMessage(label(i), BigInt(i)));
      if (i % 100 === 0) await sleep(1);
    }
    requests.end();
    await drain(responses);
    await producer.closeStream({ streamId: id });
    for (const { events, reconnects } of await within(Promise.all(subscribers), 20_000, "subscribers")) {
      expect(reconnects).toBe(0);
      expectGapFree(events, count);
    }
    const ended = (await within(watch.next(), 5_000, "watch")).value;
    expect(ended).toMatchObject({ kind: StreamAnnouncementKind.ENDED, stream: { ref: { streamId: id } } });
    await watch.return?.();
  });

  it("resumes a subscriber dropped mid-stream, on the other replica, without loss or duplicates", async () => {
    const [a, b] = await replicas();
    const producer = clientFor(a);
    const id = (await producer.initStream({ payloadType: PinType.TEXT })).stream?.ref?.streamId ?? "";
    let calls = 0;
    const subscriber = followToEnd((after, signal) => {
      // Each reconnect lands on the other replica.
      const client = clientFor(calls++ % 2 === 0 ? b : a);
      return client.subscribe({ streamId: id, afterSeq: after }, { signal });
    }, 150);
    const count = 400;
    for (let i = 1; i <= count; i += 10) {
      const payloads = Array.from({ length: 10 }, (_, k) => ({
        data: new TextEncoder().encode(label(i + k)),
        clientSeq: BigInt(i + k),
      }));
      await producer.publishBatch({ streamId: id, payloads });
      await sleep(2);
    }
    await producer.closeStream({ streamId: id });
    const { events, reconnects } = await within(subscriber, 20_000, "subscriber");
    expect(reconnects).toBe(1);
    expectGapFree(events, count);
  });

  it("resumes a publisher dropped mid-stream from its last acknowledged client_seq", async () => {
    const [a, b] = await replicas();
    const id = (await clientFor(a).initStream({ payloadType: PinType.TEXT })).stream?.ref?.streamId ?? "";
    const subscriber = followToEnd((after, signal) => clientFor(b).subscribe({ streamId: id, afterSeq: after }, { signal }));
    const count = 600;
    let next = 1;
    let acknowledged = 0n;
    for (const replica of [a, b, a]) {
      const call = new AbortController();
      const requests = new Pushable<PublishMessage>();
      const responses = clientFor(replica).publish(requests, { signal: call.signal })[Symbol.asyncIterator]();
      requests.push({ part: { case: "open", value: { streamId: id } } });
      const resume = (await responses.next()).value as PublishResponse;
      if (resume.event.case !== "ack") throw new Error("expected an ack first");
      expect(resume.event.value.lastClientSeq).toBeGreaterThanOrEqual(acknowledged);
      // Re-send everything after the last ack: payloads stored but not acknowledged come again.
      next = Number(resume.event.value.lastClientSeq) + 1;
      const stopAt = replica === a && next === 1 ? 250 : replica === b ? 450 : count;
      const acks = (async () => {
        try {
          for (;;) {
            const response = await responses.next();
            if (response.done) return;
            if (response.value.event.case === "ack") acknowledged = response.value.event.value.lastClientSeq;
          }
        } catch {
          // The call was dropped.
        }
      })();
      for (; next <= stopAt; next++) {
        requests.push(dataMessage(label(next), BigInt(next)));
        if (next % 50 === 0) await sleep(1);
      }
      if (stopAt === count) {
        requests.end();
      } else {
        // Drop the connection with payloads still in flight.
        await sleep(5);
        call.abort(new Error("connection dropped"));
      }
      await acks;
    }
    expect(acknowledged).toBe(BigInt(count));
    await clientFor(a).closeStream({ streamId: id });
    expectGapFree((await within(subscriber, 20_000, "subscriber")).events, count);
  });

  it("keeps publishers and subscribers going through a Redis restart, losing nothing acknowledged", async () => {
    const [a, b] = await replicas();
    const producer = clientFor(a);
    const id = (await producer.initStream({ payloadType: PinType.TEXT })).stream?.ref?.streamId ?? "";
    const subscriber = followToEnd((after, signal) => clientFor(b).subscribe({ streamId: id, afterSeq: after }, { signal }));
    const count = 300;
    let acknowledged = 0;
    let restarted: Promise<void> | undefined;
    let acknowledgedWhenBack = -1;
    const pidBefore = await serverPid();
    while (acknowledged < count) {
      if (acknowledged >= 100 && !restarted) {
        restarted = redis.restart().then(() => {
          acknowledgedWhenBack = acknowledged;
        });
      }
      const from = acknowledged + 1;
      const payloads = Array.from({ length: Math.min(5, count - acknowledged) }, (_, k) => ({
        data: new TextEncoder().encode(label(from + k)),
        clientSeq: BigInt(from + k),
      }));
      try {
        const { ack } = await producer.publishBatch({ streamId: id, payloads });
        acknowledged = Number(ack?.lastClientSeq ?? 0n);
      } catch {
        // A producer retries what was not acknowledged; re-sent payloads are dropped if stored.
        await sleep(50);
      }
      await sleep(2);
    }
    await restarted;
    await producer.closeStream({ streamId: id });
    const { events } = await within(subscriber, 30_000, "subscriber");
    expectGapFree(events, count);
    // The restart really happened in the middle of the stream...
    expect(await serverPid()).not.toBe(pidBefore);
    expect(acknowledgedWhenBack).toBeGreaterThanOrEqual(100);
    expect(acknowledgedWhenBack).toBeLessThan(count);
    // ...and what was stored before it came back from the append-only file, not from a replica's cache.
    const [fresh] = await replicas(`rep${prefixes}:`);
    const replay: StreamEvent[] = [];
    for await (const event of clientFor(fresh).subscribe({ streamId: id })) replay.push(event);
    expectGapFree(replay, count);
  });
});
