import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { PinType } from "../../gen/mentatlab/v1/common_pb.js";
import { StreamAnnouncementKind, type StreamEvent, type StreamInfo, StreamInfoSchema, StreamState } from "../../gen/mentatlab/v1/stream_pb.js";
import type { Announcement, PayloadInput, Retention, StreamKey, StreamStore } from "./stream-store.js";
import { newStreamId } from "./stream-id.js";

const HOUR = 3_600_000;

export const defaultTestRetention: Retention = {
  retainedMs: 300_000,
  retainedMaxEvents: 10_000,
  retainedMaxBytes: 64 * 1024 * 1024,
  endedTtlMs: 300_000,
  subscriberMaxLagBytes: 8 * 1024 * 1024,
};

function streamInfo(workspace: string, owner: string, fields: Partial<Pick<StreamInfo, "runId">> = {}): StreamInfo {
  const id = newStreamId(Date.now());
  return create(StreamInfoSchema, {
    ref: { streamId: id, workspace, payloadType: PinType.TEXT, mimeType: "text/plain", ssePath: `/streams/${id}/events` },
    owner,
    runId: fields.runId ?? "",
    labels: { purpose: "conformance" },
  });
}

function keyOf(info: StreamInfo): StreamKey {
  return { workspace: info.ref?.workspace ?? "", id: info.ref?.streamId ?? "" };
}

function text(value: string, clientSeq = 0n): PayloadInput {
  return { data: new TextEncoder().encode(value), clientSeq, attributes: {} };
}

async function collect(events: Promise<AsyncIterable<StreamEvent>>, limit = Number.POSITIVE_INFINITY): Promise<StreamEvent[]> {
  const out: StreamEvent[] = [];
  for await (const event of await events) {
    out.push(event);
    if (out.length >= limit) break;
  }
  return out;
}

function dataText(event: StreamEvent): string {
  return event.event.case === "data" ? new TextDecoder().decode(event.event.value.data) : `<${event.event.case}>`;
}

async function codeOf(promise: Promise<unknown>): Promise<Code | undefined> {
  try {
    await promise;
    return undefined;
  } catch (err) {
    return ConnectError.from(err).code;
  }
}

async function codeAndMessageOf(promise: Promise<unknown>): Promise<{ code?: Code; message?: string }> {
  try {
    await promise;
    return {};
  } catch (err) {
    const connect = ConnectError.from(err);
    return { code: connect.code, message: connect.rawMessage };
  }
}

async function nextWithin<T>(iterator: AsyncIterator<T>, ms: number): Promise<T> {
  const result = await Promise.race([iterator.next(), new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`nothing within ${ms} ms`)), ms))]);
  if (result.done) throw new Error("iterator ended");
  return result.value;
}

/**
 * The behaviour every StreamStore backend must show. `factory` makes a fresh, empty store with
 * the given retention; the suite closes it.
 */
export function describeStreamStoreConformance(name: string, factory: (retention: Retention) => Promise<StreamStore>): void {
  describe(`StreamStore conformance: ${name}`, () => {
    const opened: StreamStore[] = [];
    const store = async (retention: Partial<Retention> = {}): Promise<StreamStore> => {
      const r = await factory({ ...defaultTestRetention, ...retention });
      opened.push(r);
      return r;
    };
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((r) => r.close()));
    });

    it("creates a stream with stream_start as seq 1, visible only in its workspace", async () => {
      const r = await store();
      const info = streamInfo("ws-a", "alice", { runId: "run-1" });
      const created = await r.create(info, Date.now() + HOUR, 10, Date.now());
      expect(created.state).toBe(StreamState.OPEN);
      expect(created.lastSeq).toBe(1n);
      expect(created.firstRetainedSeq).toBe(1n);
      const record = await r.get(keyOf(info));
      expect(record?.info.owner).toBe("alice");
      expect(record?.info.runId).toBe("run-1");
      expect(record?.info.labels).toEqual({ purpose: "conformance" });
      expect(record?.info.createdAt).toBeDefined();
      expect(await r.get({ workspace: "ws-b", id: keyOf(info).id })).toBeUndefined();
      const [start] = await collect(r.events(keyOf(info), 0n, AbortSignal.timeout(5_000)), 1);
      expect(start?.seq).toBe(1n);
      expect(start?.event.case).toBe("start");
      expect(start?.event.case === "start" && start.event.value.stream?.ref?.streamId).toBe(keyOf(info).id);
    });

    it("assigns gap-free seqs and delivers replayed then live events in order, ending after stream_end", async () => {
      const r = await store();
      const info = streamInfo("ws-a", "alice");
      await r.create(info, Date.now() + HOUR, 10, Date.now());
      const first = await r.append(keyOf(info), [text("a"), text("b")], Date.now());
      expect(first).toMatchObject({ lastSeq: 3n, appended: 2, appendedBytes: 2 });
      const events = collect(r.events(keyOf(info), 0n, AbortSignal.timeout(10_000)));
      await new Promise((resolve) => setTimeout(resolve, 50));
      await r.append(keyOf(info), [text("c")], Date.now());
      await r.append(keyOf(info), [text("d"), text("e")], Date.now());
      const ended = await r.end(keyOf(info), {}, Date.now());
      expect(ended.state).toBe(StreamState.COMPLETED);
      expect(ended.endedAt).toBeDefined();
      const got = await events;
      expect(got.map((e) => e.seq)).toEqual([1n, 2n, 3n, 4n, 5n, 6n, 7n]);
      expect(got.slice(1, 6).map(dataText)).toEqual(["a", "b", "c", "d", "e"]);
      const end = got[6];
      expect(end?.event.case).toBe("end");
      expect(end?.event.case === "end" && end.event.value).toMatchObject({ lastDataSeq: 6n, totalBytes: 5n });
      expect((await r.get(keyOf(info)))?.info).toMatchObject({ lastSeq: 7n, bytesPublished: 5n, state: StreamState.COMPLETED });
    });

    it("resumes after a given seq, each event once", async () => {
      const r = await store();
      const info = streamInfo("ws-a", "alice");
      await r.create(info, Date.now() + HOUR, 10, Date.now());
      await r.append(
        keyOf(info),
        ["a", "b", "c", "d"].map((v) => text(v)),
        Date.now(),
      );
      await r.end(keyOf(info), {}, Date.now());
      const got = await collect(r.events(keyOf(info), 3n, AbortSignal.timeout(5_000)));
      expect(got.map((e) => e.seq)).toEqual([4n, 5n, 6n]);
      expect(got.map(dataText)).toEqual(["c", "d", "<end>"]);
    });

    it("drops re-sent payloads by client seq and always stores payloads without one", async () => {
      const r = await store();
      const info = streamInfo("ws-a", "alice");
      await r.create(info, Date.now() + HOUR, 10, Date.now());
      expect(await r.append(keyOf(info), [text("1", 1n), text("2", 2n), text("3", 3n)], Date.now())).toMatchObject({
        lastSeq: 4n,
        lastClientSeq: 3n,
        appended: 3,
      });
      expect(await r.append(keyOf(info), [text("2", 2n), text("3", 3n), text("4", 4n)], Date.now())).toMatchObject({
        lastSeq: 5n,
        lastClientSeq: 4n,
        appended: 1,
        appendedBytes: 1,
      });
      expect(await r.append(keyOf(info), [text("x"), text("y")], Date.now())).toMatchObject({
        lastSeq: 7n,
        lastClientSeq: 4n,
        appended: 2,
      });
      expect((await r.get(keyOf(info)))?.lastClientSeq).toBe(4n);
      await r.end(keyOf(info), {}, Date.now());
      const got = await collect(r.events(keyOf(info), 1n, AbortSignal.timeout(5_000)));
      expect(got.map(dataText)).toEqual(["1", "2", "3", "4", "x", "y", "<end>"]);
    });

    it("fans out to many subscribers, all seeing the same sequence", async () => {
      const r = await store();
      const info = streamInfo("ws-a", "alice");
      await r.create(info, Date.now() + HOUR, 10, Date.now());
      const subscribers = Array.from({ length: 20 }, () => collect(r.events(keyOf(info), 0n, AbortSignal.timeout(10_000))));
      for (let i = 0; i < 50; i++) await r.append(keyOf(info), [text(`m${i}`)], Date.now());
      await r.end(keyOf(info), {}, Date.now());
      const results = await Promise.all(subscribers);
      const expected = Array.from({ length: 52 }, (_, i) => BigInt(i + 1));
      for (const got of results) expect(got.map((e) => e.seq)).toEqual(expected);
    });

    it("acknowledges an append before any subscriber is handed its event: fan-out is off the publish path", async () => {
      const r = await store();
      const info = streamInfo("ws-a", "alice");
      await r.create(info, Date.now() + HOUR, 10, Date.now());
      const received: bigint[][] = Array.from({ length: 50 }, () => []);
      const subscribers = received.map(async (seqs) => {
        for await (const event of await r.events(keyOf(info), 0n, AbortSignal.timeout(10_000))) seqs.push(event.seq);
      });
      while (received.some((seqs) => seqs.length === 0)) await new Promise((resolve) => setTimeout(resolve, 5));
      await r.append(keyOf(info), [text("payload")], Date.now());
      // Everything the acknowledging call would still do in its turn (microtasks, nextTicks) runs first.
      for (let hop = 0; hop < 100; hop++) await new Promise((resolve) => process.nextTick(resolve));
      expect(received.filter((seqs) => seqs.includes(2n)).length).toBe(0);
      await r.end(keyOf(info), {}, Date.now());
      await Promise.all(subscribers);
      for (const seqs of received) expect(seqs).toEqual([1n, 2n, 3n]);
    });

    it("cuts off a live subscriber that falls more than its byte budget behind, never slowing the others", async () => {
      const r = await store({ subscriberMaxLagBytes: 4_096 });
      const info = streamInfo("ws-a", "alice");
      await r.create(info, Date.now() + HOUR, 10, Date.now());
      const stalled = (await r.events(keyOf(info), 0n, AbortSignal.timeout(10_000)))[Symbol.asyncIterator]();
      expect((await nextWithin(stalled, 5_000)).seq).toBe(1n);
      const caughtUp = nextWithin(stalled, 5_000);
      const fast = collect(r.events(keyOf(info), 0n, AbortSignal.timeout(10_000)));
      await r.append(keyOf(info), [text("first")], Date.now());
      expect((await caughtUp).seq).toBe(2n);
      const kilobyte = "k".repeat(1_024);
      for (let i = 0; i < 8; i++) {
        await r.append(keyOf(info), [text(kilobyte)], Date.now());
        // Each append in its own turn of the event loop, as a live producer's arrive.
        await new Promise((resolve) => setImmediate(resolve));
      }
      await r.end(keyOf(info), {}, Date.now());
      expect((await fast).map((e) => e.seq)).toEqual(Array.from({ length: 11 }, (_, i) => BigInt(i + 1)));
      const cutOff = await codeAndMessageOf(stalled.next());
      expect(cutOff.code).toBe(Code.OutOfRange);
      expect(cutOff.message).toContain("fell more than 4096 bytes behind its newest event after seq 2");
      expect(cutOff.message).toContain("the oldest available is seq 1");
      const resumed = await collect(r.events(keyOf(info), 2n, AbortSignal.timeout(5_000)));
      expect(resumed.map((e) => e.seq)).toEqual(Array.from({ length: 9 }, (_, i) => BigInt(i + 3)));
    });

    it("never cuts off a follower that is not lag-limited (a consumer its producer is held back for)", async () => {
      const r = await store({ subscriberMaxLagBytes: 4_096 });
      const info = streamInfo("ws-a", "alice");
      await r.create(info, Date.now() + HOUR, 10, Date.now());
      const held = (await r.events(keyOf(info), 0n, AbortSignal.timeout(10_000), false))[Symbol.asyncIterator]();
      expect((await nextWithin(held, 5_000)).seq).toBe(1n);
      const caughtUp = nextWithin(held, 5_000);
      await r.append(keyOf(info), [text("first")], Date.now());
      expect((await caughtUp).seq).toBe(2n);
      for (let i = 0; i < 8; i++) {
        await r.append(keyOf(info), [text("k".repeat(1_024))], Date.now());
        await new Promise((resolve) => setImmediate(resolve));
      }
      await r.end(keyOf(info), {}, Date.now());
      const rest: bigint[] = [];
      for (let next = await held.next(); !next.done; next = await held.next()) rest.push(next.value.seq);
      expect(rest).toEqual(Array.from({ length: 9 }, (_, i) => BigInt(i + 3)));
    });

    it("numbers each payload with its byte offset and keeps declared consumers' attachment and forward-only progress", async () => {
      const r = await store();
      const info = streamInfo("ws-a", "alice", { runId: "run-1" });
      await r.create(info, Date.now() + HOUR, 10, Date.now());
      const key = keyOf(info);
      await r.append(key, [text("abc"), text("de")], Date.now());
      await r.append(key, [text("fghi")], Date.now());
      await r.end(key, {}, Date.now());
      const offsets = (await collect(r.events(key, 0n, AbortSignal.timeout(5_000)))).flatMap((e) => (e.event.case === "data" ? [e.event.value.offset] : []));
      expect(offsets).toEqual([0n, 3n, 5n]);

      const other = streamInfo("ws-a", "alice", { runId: "run-1" });
      await r.create(other, Date.now() + HOUR, 10, Date.now());
      const otherKey = keyOf(other);
      expect((await r.get(otherKey))?.consumers.size).toBe(0);
      await r.consumerAttached(otherKey, "reader", true, 1_000);
      await r.consumerAttached(otherKey, "reader", true, 1_001);
      await r.consumerAdvanced(otherKey, "reader", 4n, 900n);
      await r.consumerAdvanced(otherKey, "reader", 3n, 500n);
      expect((await r.get(otherKey))?.consumers.get("reader")).toEqual({ seq: 4n, bytes: 900n, attached: 2, detachedAtMs: 0 });
      await r.consumerAttached(otherKey, "reader", false, 2_000);
      expect((await r.get(otherKey))?.consumers.get("reader")).toMatchObject({ attached: 1, detachedAtMs: 0 });
      await r.consumerAttached(otherKey, "reader", false, 3_000);
      expect((await r.get(otherKey))?.consumers.get("reader")).toEqual({ seq: 4n, bytes: 900n, attached: 0, detachedAtMs: 3_000 });
      expect((await r.get(key))?.consumers.size).toBe(0);
    });

    it("reports OUT_OF_RANGE with the oldest retained seq to a subscriber behind the buffer", async () => {
      const r = await store({ retainedMaxEvents: 10 });
      const info = streamInfo("ws-a", "alice");
      await r.create(info, Date.now() + HOUR, 10, Date.now());
      for (let i = 0; i < 400; i++) await r.append(keyOf(info), [text(`m${i}`)], Date.now());
      await r.end(keyOf(info), {}, Date.now());
      const record = await r.get(keyOf(info));
      const oldest = record?.info.firstRetainedSeq ?? 0n;
      expect(oldest).toBeGreaterThan(2n);
      // The count bound holds (Redis trims approximately, in whole blocks of about 100 entries).
      expect(402n - oldest).toBeLessThanOrEqual(210n);
      let error: ConnectError | undefined;
      try {
        await collect(r.events(keyOf(info), 0n, AbortSignal.timeout(5_000)));
      } catch (err) {
        error = ConnectError.from(err);
      }
      expect(error?.code).toBe(Code.OutOfRange);
      expect(error?.rawMessage).toContain(`oldest available is seq ${oldest}`);
      const rest = await collect(r.events(keyOf(info), oldest - 1n, AbortSignal.timeout(5_000)));
      expect(rest[0]?.seq).toBe(oldest);
      expect(rest.map((e) => e.seq)).toEqual(Array.from({ length: Number(402n - oldest + 1n) }, (_, i) => oldest + BigInt(i)));
    });

    it("trims events older than the retention time but keeps the newest", async () => {
      const r = await store({ retainedMs: 1_000 });
      const info = streamInfo("ws-a", "alice");
      const t0 = Date.now();
      await r.create(info, t0 + HOUR, 10, t0);
      // seq 1 is stream_start, 2..38 are old, 39..101 are new.
      for (let i = 0; i < 37; i++) await r.append(keyOf(info), [text(`old-${i}`)], t0 + i);
      // Cutoff t0 + 10: stream_start and old-0..old-9 (stored at t0 .. t0 + 9) go.
      await r.trim(t0 + 1_010);
      expect((await r.get(keyOf(info)))?.info.firstRetainedSeq).toBe(12n);
      for (let i = 0; i < 63; i++) await r.append(keyOf(info), [text(`new-${i}`)], t0 + 5_000 + i);
      await r.trim(t0 + 5_500);
      expect((await r.get(keyOf(info)))?.info.firstRetainedSeq).toBe(39n);
      const kept = await collect(r.events(keyOf(info), 38n, AbortSignal.timeout(5_000)), 63);
      expect(kept.map(dataText)).toEqual(Array.from({ length: 63 }, (_, i) => `new-${i}`));
      await r.trim(t0 + 60_000);
      expect((await r.get(keyOf(info)))?.info.firstRetainedSeq).toBe(101n);
    });

    it("ends with stream_error, refuses to append or end again", async () => {
      const r = await store();
      const info = streamInfo("ws-a", "alice");
      await r.create(info, Date.now() + HOUR, 10, Date.now());
      await r.append(keyOf(info), [text("a")], Date.now());
      const failed = await r.end(keyOf(info), { error: { message: "encoder crashed", code: Code.Internal } }, Date.now());
      expect(failed.state).toBe(StreamState.FAILED);
      const got = await collect(r.events(keyOf(info), 2n, AbortSignal.timeout(5_000)));
      expect(got).toHaveLength(1);
      expect(got[0]?.event.case === "error" && got[0].event.value).toMatchObject({ message: "encoder crashed", code: "internal" });
      expect(await codeOf(r.append(keyOf(info), [text("late")], Date.now()))).toBe(Code.FailedPrecondition);
      expect(await codeOf(r.end(keyOf(info), {}, Date.now()))).toBe(Code.FailedPrecondition);
    });

    it("answers NOT_FOUND for unknown streams and for other workspaces' streams", async () => {
      const r = await store();
      const info = streamInfo("ws-a", "alice");
      await r.create(info, Date.now() + HOUR, 10, Date.now());
      const foreign = { workspace: "ws-b", id: keyOf(info).id };
      expect(await codeOf(r.append(foreign, [text("x")], Date.now()))).toBe(Code.NotFound);
      expect(await codeOf(r.end(foreign, {}, Date.now()))).toBe(Code.NotFound);
      expect(await codeOf(collect(r.events(foreign, 0n, AbortSignal.timeout(5_000))))).toBe(Code.NotFound);
      expect(await codeOf(collect(r.events({ workspace: "ws-a", id: "st_missing" }, 0n, AbortSignal.timeout(5_000))))).toBe(Code.NotFound);
    });

    it("limits open streams per owner within a workspace", async () => {
      const r = await store();
      const a = streamInfo("ws-a", "alice");
      await r.create(a, Date.now() + HOUR, 2, Date.now());
      await r.create(streamInfo("ws-a", "alice"), Date.now() + HOUR, 2, Date.now());
      expect(await codeOf(r.create(streamInfo("ws-a", "alice"), Date.now() + HOUR, 2, Date.now()))).toBe(Code.ResourceExhausted);
      await r.create(streamInfo("ws-a", "bob"), Date.now() + HOUR, 2, Date.now());
      await r.create(streamInfo("ws-b", "alice"), Date.now() + HOUR, 2, Date.now());
      await r.end(keyOf(a), {}, Date.now());
      await r.create(streamInfo("ws-a", "alice"), Date.now() + HOUR, 2, Date.now());
      expect(await r.countOpen()).toBe(4);
    });

    it("ends a stream past its deadline on append with DEADLINE_EXCEEDED and lists it as overdue until then", async () => {
      const r = await store();
      const t0 = Date.now();
      const info = streamInfo("ws-a", "alice");
      await r.create(info, t0 + 1_000, 10, t0);
      await r.create(streamInfo("ws-a", "alice"), t0 + HOUR, 10, t0);
      expect(await r.overdue(t0 + 500)).toEqual([]);
      expect(await r.overdue(t0 + 1_000)).toEqual([keyOf(info)]);
      await r.append(keyOf(info), [text("in time")], t0 + 999);
      const error = await r.append(keyOf(info), [text("late")], t0 + 1_001).then(
        () => undefined,
        (err: unknown) => ConnectError.from(err),
      );
      expect(error?.code).toBe(Code.DeadlineExceeded);
      expect(error?.rawMessage).toMatch(/maximum duration/);
      const got = await collect(r.events(keyOf(info), 1n, AbortSignal.timeout(5_000)));
      expect(got.map(dataText)).toEqual(["in time", "<error>"]);
      expect(got[1]?.event.case === "error" && got[1].event.value.code).toBe("deadline_exceeded");
      expect((await r.get(keyOf(info)))?.info.state).toBe(StreamState.FAILED);
      expect(await r.overdue(t0 + 2_000)).toEqual([]);
    });

    it("announces streams opening and ending to watchers of the same workspace only", async () => {
      const r = await store();
      const stop = new AbortController();
      const seen = (await r.announcements("ws-a", stop.signal))[Symbol.asyncIterator]();
      const other = (await r.announcements("ws-b", stop.signal))[Symbol.asyncIterator]();
      const info = streamInfo("ws-a", "alice");
      await r.create(info, Date.now() + HOUR, 10, Date.now());
      await r.end(keyOf(info), {}, Date.now());
      const foreign = streamInfo("ws-b", "bob");
      await r.create(foreign, Date.now() + HOUR, 10, Date.now());
      const available: Announcement = await nextWithin(seen, 5_000);
      expect(available.kind).toBe(StreamAnnouncementKind.AVAILABLE);
      expect(available.stream.ref?.streamId).toBe(keyOf(info).id);
      expect(available.stream.state).toBe(StreamState.OPEN);
      const ended = await nextWithin(seen, 5_000);
      expect(ended.kind).toBe(StreamAnnouncementKind.ENDED);
      expect(ended.stream.state).toBe(StreamState.COMPLETED);
      expect((await nextWithin(other, 5_000)).stream.ref?.streamId).toBe(keyOf(foreign).id);
      stop.abort();
      await expect(seen.next()).rejects.toThrow();
    });

    it("lists a workspace's streams newest first, filtered and paged", async () => {
      const r = await store();
      const made: StreamInfo[] = [];
      for (let i = 0; i < 5; i++) {
        const info = streamInfo("ws-a", i % 2 === 0 ? "alice" : "bob", { runId: i < 3 ? "run-1" : "run-2" });
        await r.create(info, Date.now() + HOUR, 10, Date.now());
        made.push(info);
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      await r.create(streamInfo("ws-b", "alice"), Date.now() + HOUR, 10, Date.now());
      await r.end(keyOf(made[0] as StreamInfo), {}, Date.now());
      const ids = (infos: StreamInfo[]) => infos.map((i) => i.ref?.streamId);
      const newestFirst = ids(made).reverse();
      const page1 = await r.list("ws-a", { pageSize: 2, cursor: "" });
      expect(ids(page1.streams)).toEqual(newestFirst.slice(0, 2));
      const page2 = await r.list("ws-a", { pageSize: 2, cursor: page1.nextCursor });
      expect(ids(page2.streams)).toEqual(newestFirst.slice(2, 4));
      const page3 = await r.list("ws-a", { pageSize: 2, cursor: page2.nextCursor });
      expect(ids(page3.streams)).toEqual(newestFirst.slice(4));
      expect(page3.nextCursor).toBe("");
      expect(ids((await r.list("ws-a", { pageSize: 50, cursor: "", owner: "alice", runId: "run-1" })).streams)).toEqual(
        ids([made[2] as StreamInfo, made[0] as StreamInfo]),
      );
      expect(ids((await r.list("ws-a", { pageSize: 50, cursor: "", states: [StreamState.COMPLETED] })).streams)).toEqual(ids([made[0] as StreamInfo]));
    });

    it("expires an ended stream's buffer after the configured time", async () => {
      const r = await store({ endedTtlMs: 300 });
      const info = streamInfo("ws-a", "alice");
      await r.create(info, Date.now() + HOUR, 10, Date.now());
      await r.end(keyOf(info), {}, Date.now());
      expect(await r.get(keyOf(info))).toBeDefined();
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect(await r.get(keyOf(info))).toBeUndefined();
      expect((await r.list("ws-a", { pageSize: 50, cursor: "" })).streams).toEqual([]);
    });

    it("stops a live subscriber when its signal aborts", async () => {
      const r = await store();
      const info = streamInfo("ws-a", "alice");
      await r.create(info, Date.now() + HOUR, 10, Date.now());
      const stop = new AbortController();
      const iterator = (await r.events(keyOf(info), 0n, stop.signal))[Symbol.asyncIterator]();
      expect((await nextWithin(iterator, 5_000)).seq).toBe(1n);
      const pending = iterator.next();
      stop.abort(new Error("client went away"));
      await expect(pending).rejects.toThrow("client went away");
    });
  });
}
