import { gunzipSync } from "node:zlib";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { PinType } from "../../gen/mentatlab/v1/common_pb.js";
import { type PublishResponse, StreamAnnouncementKind, StreamState } from "../../gen/mentatlab/v1/stream_pb.js";
import { clientFor, collectEvents, dataMessage, type PublishMessage, payloadTexts, Pushable, runtimesClosedAfterEach, within } from "./testing.js";

const runtime = runtimesClosedAfterEach();

async function errorOf(promise: Promise<unknown>): Promise<ConnectError | undefined> {
  try {
    await promise;
    return undefined;
  } catch (err) {
    return ConnectError.from(err);
  }
}

const utf8 = (s: string) => new TextEncoder().encode(s);

describe("InitStream", () => {
  it("creates a stream and says where to publish and subscribe, with the chunk size for its type", async () => {
    const client = clientFor(await runtime());
    const text = await client.initStream({ payloadType: PinType.TEXT, runId: "run-1", labels: { model: "m" } });
    expect(text.stream?.ref).toMatchObject({ workspace: "ws-test", payloadType: PinType.TEXT, mimeType: "text/plain; charset=utf-8" });
    expect(text.stream?.ref?.ssePath).toBe(`/streams/${text.stream?.ref?.streamId}/events`);
    expect(text.stream).toMatchObject({ owner: "alice", runId: "run-1", state: StreamState.OPEN, lastSeq: 1n });
    expect(text.publishProcedure).toBe("/mentatlab.v1.StreamService/Publish");
    expect(text.subscribeProcedure).toBe("/mentatlab.v1.StreamService/Subscribe");
    expect(text.recommendedChunkBytes).toBe(1024);
    expect((await client.initStream({ payloadType: PinType.AUDIO, mimeType: "audio/wav" })).recommendedChunkBytes).toBe(8192);
    expect((await client.initStream({ payloadType: PinType.VIDEO, mimeType: "video/mp4" })).recommendedChunkBytes).toBe(65536);
  });

  it("rejects a MIME type that does not fit the payload type, before creating anything", async () => {
    const r = await runtime();
    const client = clientFor(r);
    const missing = await errorOf(client.initStream({ payloadType: PinType.AUDIO }));
    expect(missing?.code).toBe(Code.InvalidArgument);
    expect(missing?.rawMessage).toContain('e.g. "audio/wav"');
    expect((await errorOf(client.initStream({ payloadType: PinType.TEXT, mimeType: "video/mp4" })))?.code).toBe(Code.InvalidArgument);
    expect((await client.listStreams({})).streams).toEqual([]);
  });

  it("lets a sidecar create streams for its own run only", async () => {
    const sidecar = clientFor(await runtime(), { run: { runId: "run-7", nodeId: "n1", attempt: 1 } });
    expect((await errorOf(sidecar.initStream({ payloadType: PinType.TEXT, runId: "run-8" })))?.code).toBe(Code.PermissionDenied);
    expect((await sidecar.initStream({ payloadType: PinType.TEXT, runId: "run-7" })).stream?.runId).toBe("run-7");
  });

  it("refuses more open streams than the per-user limit with RESOURCE_EXHAUSTED", async () => {
    const r = await runtime({ maxOpenStreamsPerUser: 2 });
    const alice = clientFor(r);
    const first = await alice.initStream({ payloadType: PinType.TEXT });
    await alice.initStream({ payloadType: PinType.TEXT });
    const refused = await errorOf(alice.initStream({ payloadType: PinType.TEXT }));
    expect(refused?.code).toBe(Code.ResourceExhausted);
    expect(refused?.rawMessage).toMatch(/already has 2 open streams.*CloseStream/);
    await clientFor(r, { user: "bob" }).initStream({ payloadType: PinType.TEXT });
    await alice.closeStream({ streamId: first.stream?.ref?.streamId ?? "" });
    await alice.initStream({ payloadType: PinType.TEXT });
  });
});

describe("Publish", () => {
  it("acknowledges stored payloads and resumes a reconnecting producer after its last acknowledged client_seq", async () => {
    const r = await runtime();
    const client = clientFor(r);
    const id = (await client.initStream({ payloadType: PinType.TEXT })).stream?.ref?.streamId ?? "";
    const subscriber = collectEvents(client.subscribe({ streamId: id }));

    const first = new Pushable<PublishMessage>();
    const acks = client.publish(first)[Symbol.asyncIterator]();
    first.push({ part: { case: "open", value: { streamId: id } } });
    expect((await acks.next()).value).toMatchObject({ event: { case: "ack", value: { lastSeq: 1n, lastClientSeq: 0n } } });
    first.push(dataMessage("a", 1n));
    first.push(dataMessage("b", 2n));
    let lastAck: PublishResponse | undefined;
    while (lastAck?.event.case !== "ack" || lastAck.event.value.lastClientSeq < 2n) lastAck = (await acks.next()).value;
    expect(lastAck.event.value.lastSeq).toBe(3n);
    // The connection drops with "c" sent but never acknowledged.
    first.push(dataMessage("c", 3n));
    first.end();
    for (;;) if ((await acks.next()).done) break;

    const second = new Pushable<PublishMessage>();
    const resumed = client.publish(second)[Symbol.asyncIterator]();
    second.push({ part: { case: "open", value: { streamId: id } } });
    const resumeAt = (await resumed.next()).value as PublishResponse;
    expect(resumeAt.event.case === "ack" && resumeAt.event.value.lastClientSeq).toBe(3n);
    // A producer that did not see the ack for "c" re-sends it; it must not be stored twice.
    second.push(dataMessage("c", 3n));
    second.push(dataMessage("d", 4n));
    second.end();
    for (;;) if ((await resumed.next()).done) break;
    await client.closeStream({ streamId: id });
    const events = await within(subscriber, 5_000, "subscriber");
    expect(payloadTexts(events)).toEqual(["a", "b", "c", "d"]);
    expect(events.map((e) => e.seq)).toEqual([1n, 2n, 3n, 4n, 5n, 6n]);
  });

  it("requires `open` first, and only the creator in the same workspace may publish", async () => {
    const r = await runtime();
    const alice = clientFor(r);
    const id = (await alice.initStream({ payloadType: PinType.TEXT })).stream?.ref?.streamId ?? "";
    const noOpen = await errorOf(collectAll(alice.publish(messages(dataMessage("x", 1n)))));
    expect(noOpen?.code).toBe(Code.InvalidArgument);
    const open: PublishMessage = { part: { case: "open", value: { streamId: id } } };
    expect((await errorOf(collectAll(clientFor(r, { user: "bob" }).publish(messages(open)))))?.code).toBe(Code.PermissionDenied);
    expect((await errorOf(collectAll(clientFor(r, { workspace: "ws-other" }).publish(messages(open)))))?.code).toBe(Code.NotFound);
    expect((await errorOf(collectAll(alice.publish(messages(open, open)))))?.code).toBe(Code.InvalidArgument);
  });

  it("rejects a bad batch as a whole, leaving the stream untouched", async () => {
    const r = await runtime();
    const client = clientFor(r);
    const id = (await client.initStream({ payloadType: PinType.TEXT })).stream?.ref?.streamId ?? "";
    const backwards = await errorOf(
      client.publishBatch({
        streamId: id,
        payloads: [
          { data: utf8("a"), clientSeq: 2n },
          { data: utf8("b"), clientSeq: 1n },
        ],
      }),
    );
    expect(backwards?.code).toBe(Code.InvalidArgument);
    expect(backwards?.rawMessage).toContain("payloads[1].client_seq 1 does not increase");
    const broken = await errorOf(client.publishBatch({ streamId: id, payloads: [{ data: utf8("ok") }, { data: new Uint8Array([0xe2, 0x82]) }] }));
    expect(broken?.code).toBe(Code.InvalidArgument);
    expect(broken?.rawMessage).toContain("payloads[1].data is not valid UTF-8");
    expect((await client.getStream({ streamId: id })).stream).toMatchObject({ lastSeq: 1n, bytesPublished: 0n });
    const ok = await client.publishBatch({ streamId: id, payloads: [{ data: utf8("a"), clientSeq: 1n }, { data: utf8("€") }] });
    expect(ok.ack).toMatchObject({ lastSeq: 3n, lastClientSeq: 1n });
    expect(ok.adaptBitrate).toBeUndefined();
  });
});

describe("Subscribe", () => {
  it("gzips compressible text for subscribers that accept it, and only for them", async () => {
    const r = await runtime();
    const client = clientFor(r);
    const id = (await client.initStream({ payloadType: PinType.TEXT })).stream?.ref?.streamId ?? "";
    const text = "the quick brown fox jumps over the lazy dog. ".repeat(20);
    await client.publishBatch({ streamId: id, payloads: [{ data: utf8(text) }, { data: utf8("hi") }] });
    await client.closeStream({ streamId: id });
    const zipped = await collectEvents(client.subscribe({ streamId: id, acceptGzip: true }));
    const big = zipped[1]?.event.case === "data" ? zipped[1].event.value : undefined;
    expect(big?.contentEncoding).toBe("gzip");
    expect(big?.data.byteLength).toBeLessThan(text.length);
    expect(gunzipSync(big?.data ?? new Uint8Array()).toString("utf8")).toBe(text);
    const small = zipped[2]?.event.case === "data" ? zipped[2].event.value : undefined;
    expect(small?.contentEncoding).toBe("");
    const plain = await collectEvents(client.subscribe({ streamId: id }));
    expect(payloadTexts(plain)).toEqual([text, "hi"]);
    expect(plain[1]?.event.case === "data" && plain[1].event.value.contentEncoding).toBe("");
  });

  it("does not gzip binary streams", async () => {
    const r = await runtime();
    const client = clientFor(r);
    const id = (await client.initStream({ payloadType: PinType.BINARY })).stream?.ref?.streamId ?? "";
    await client.publishBatch({ streamId: id, payloads: [{ data: new Uint8Array(4096) }] });
    await client.closeStream({ streamId: id });
    const events = await collectEvents(client.subscribe({ streamId: id, acceptGzip: true }));
    expect(events[1]?.event.case === "data" && events[1].event.value.contentEncoding).toBe("");
  });

  it("refuses after_seq past the newest event, and other workspaces' streams", async () => {
    const r = await runtime();
    const client = clientFor(r);
    const id = (await client.initStream({ payloadType: PinType.TEXT })).stream?.ref?.streamId ?? "";
    const past = await errorOf(collectEvents(client.subscribe({ streamId: id, afterSeq: 5n })));
    expect(past?.code).toBe(Code.OutOfRange);
    expect(past?.rawMessage).toContain("newest event");
    const foreign = clientFor(r, { workspace: "ws-other" });
    expect((await errorOf(collectEvents(foreign.subscribe({ streamId: id }))))?.code).toBe(Code.NotFound);
    expect((await errorOf(foreign.getStream({ streamId: id })))?.code).toBe(Code.NotFound);
    expect((await errorOf(foreign.closeStream({ streamId: id })))?.code).toBe(Code.NotFound);
  });

  it("returns at once for a subscriber already past the end", async () => {
    const client = clientFor(await runtime());
    const id = (await client.initStream({ payloadType: PinType.TEXT })).stream?.ref?.streamId ?? "";
    await client.closeStream({ streamId: id });
    expect(await within(collectEvents(client.subscribe({ streamId: id, afterSeq: 2n })), 2_000, "subscribe")).toEqual([]);
  });
});

describe("CloseStream and limits", () => {
  it("sends stream_end or stream_error to every live subscriber", async () => {
    const r = await runtime();
    const client = clientFor(r);
    const ok = (await client.initStream({ payloadType: PinType.TEXT })).stream?.ref?.streamId ?? "";
    const bad = (await client.initStream({ payloadType: PinType.TEXT })).stream?.ref?.streamId ?? "";
    const okSubs = [1, 2, 3].map(() => collectEvents(client.subscribe({ streamId: ok })));
    const badSub = collectEvents(client.subscribe({ streamId: bad }));
    await client.publishBatch({ streamId: ok, payloads: [{ data: utf8("x") }] });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const closed = await client.closeStream({ streamId: ok });
    expect(closed.stream?.state).toBe(StreamState.COMPLETED);
    const failed = await client.closeStream({ streamId: bad, errorMessage: "camera unplugged" });
    expect(failed.stream?.state).toBe(StreamState.FAILED);
    for (const events of await within(Promise.all(okSubs), 5_000, "subscribers")) {
      expect(events.at(-1)?.event).toMatchObject({ case: "end", value: { lastDataSeq: 2n, totalBytes: 1n } });
    }
    expect((await within(badSub, 5_000, "subscriber")).at(-1)?.event).toMatchObject({
      case: "error",
      value: { message: "camera unplugged", code: "aborted" },
    });
    expect((await errorOf(client.closeStream({ streamId: ok })))?.code).toBe(Code.FailedPrecondition);
    expect((await errorOf(client.publishBatch({ streamId: ok, payloads: [{ data: utf8("y") }] })))?.code).toBe(Code.FailedPrecondition);
    expect(r.metrics.streamErrorRate).toBe(0.5);
  });

  it("ends a stream past its maximum duration: DEADLINE_EXCEEDED to the producer, stream_error to subscribers", async () => {
    const r = await runtime({ maxDurationMs: 150 });
    const client = clientFor(r);
    const id = (await client.initStream({ payloadType: PinType.TEXT })).stream?.ref?.streamId ?? "";
    const subscriber = collectEvents(client.subscribe({ streamId: id }));
    await client.publishBatch({ streamId: id, payloads: [{ data: utf8("early") }] });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const late = await errorOf(client.publishBatch({ streamId: id, payloads: [{ data: utf8("late") }] }));
    expect(late?.code).toBe(Code.DeadlineExceeded);
    expect(late?.rawMessage).toMatch(/maximum duration/);
    const events = await within(subscriber, 5_000, "subscriber");
    expect(payloadTexts(events)).toEqual(["early"]);
    expect(events.at(-1)?.event).toMatchObject({ case: "error", value: { code: "deadline_exceeded" } });
  });

  it("ends a quiet stream past its maximum duration from the sweeper", async () => {
    const r = await runtime({ maxDurationMs: 100, sweepIntervalMs: 50 });
    const client = clientFor(r);
    const id = (await client.initStream({ payloadType: PinType.TEXT })).stream?.ref?.streamId ?? "";
    const events = await within(collectEvents(client.subscribe({ streamId: id })), 5_000, "subscriber");
    expect(events.at(-1)?.event).toMatchObject({ case: "error", value: { code: "deadline_exceeded" } });
    expect((await client.getStream({ streamId: id })).stream?.state).toBe(StreamState.FAILED);
    expect(r.metrics.activeStreamsCount).toBe(0);
  });
});

describe("WatchStreams and ListStreams", () => {
  it("announces open streams first, then new and ended ones, filtered and scoped to the workspace", async () => {
    const r = await runtime();
    const client = clientFor(r);
    const before = (await client.initStream({ payloadType: PinType.TEXT, runId: "run-1" })).stream?.ref?.streamId;
    await client.initStream({ payloadType: PinType.TEXT, runId: "run-2" });
    const stop = new AbortController();
    const watch = client.watchStreams({ filter: { runId: "run-1" } }, { signal: stop.signal })[Symbol.asyncIterator]();
    const first = (await within(watch.next(), 5_000, "watch")).value;
    expect(first).toMatchObject({ kind: StreamAnnouncementKind.AVAILABLE, stream: { ref: { streamId: before } } });
    await clientFor(r, { workspace: "ws-other" }).initStream({ payloadType: PinType.TEXT, runId: "run-1" });
    await client.initStream({ payloadType: PinType.TEXT, runId: "run-2" });
    const later = (await client.initStream({ payloadType: PinType.TEXT, runId: "run-1" })).stream?.ref?.streamId ?? "";
    await client.closeStream({ streamId: later });
    const second = (await within(watch.next(), 5_000, "watch")).value;
    expect(second).toMatchObject({ kind: StreamAnnouncementKind.AVAILABLE, stream: { ref: { streamId: later } } });
    const third = (await within(watch.next(), 5_000, "watch")).value;
    expect(third).toMatchObject({ kind: StreamAnnouncementKind.ENDED, stream: { ref: { streamId: later }, state: StreamState.COMPLETED } });
    stop.abort();
  });

  it("announces the streams that ended after ended_after too, as a reopened watch asks", async () => {
    const client = clientFor(await runtime());
    const endedEarlier = (await client.initStream({ payloadType: PinType.TEXT })).stream?.ref?.streamId ?? "";
    await client.closeStream({ streamId: endedEarlier });
    await new Promise((resolve) => setTimeout(resolve, 5));
    const since = new Date();
    await new Promise((resolve) => setTimeout(resolve, 5));
    const endedSince = (await client.initStream({ payloadType: PinType.TEXT })).stream?.ref?.streamId ?? "";
    await client.closeStream({ streamId: endedSince });
    const open = (await client.initStream({ payloadType: PinType.TEXT })).stream?.ref?.streamId ?? "";
    /**
     * What a new watch lists before any live change. A stream opened once the first announcement came
     * is announced live, after the whole listing, so it marks the listing's end.
     */
    const listed = async (request: Parameters<typeof client.watchStreams>[0]) => {
      const seen: string[] = [];
      const stop = new AbortController();
      let marker = "";
      for await (const a of client.watchStreams(request, { signal: stop.signal })) {
        const id = a.stream?.ref?.streamId ?? "";
        if (marker === "") marker = (await client.initStream({ payloadType: PinType.TEXT })).stream?.ref?.streamId ?? "";
        if (id === marker) break;
        seen.push(`${StreamAnnouncementKind[a.kind]} ${id}`);
      }
      stop.abort();
      await client.closeStream({ streamId: marker });
      return seen;
    };
    expect(await listed({ endedAfter: timestampFromDate(since), filter: { states: [StreamState.OPEN] } })).toEqual([`AVAILABLE ${open}`]);
    expect(await listed({})).toEqual([`AVAILABLE ${open}`]);
    // Only as far as the filter lets ended streams through, and not at all without ended_after. (The
    // markers above ended after `since` too.)
    const withEnded = await listed({ endedAfter: timestampFromDate(since) });
    expect(withEnded[0]).toBe(`AVAILABLE ${open}`);
    expect(withEnded).toContain(`ENDED ${endedSince}`);
    expect(withEnded).not.toContain(`ENDED ${endedEarlier}`);
  });

  it("pages the workspace's streams newest first and rejects a forged page token", async () => {
    const client = clientFor(await runtime());
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push((await client.initStream({ payloadType: PinType.TEXT })).stream?.ref?.streamId ?? "");
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    const page1 = await client.listStreams({ pageSize: 2 });
    expect(page1.streams.map((s) => s.ref?.streamId)).toEqual([ids[2], ids[1]]);
    const page2 = await client.listStreams({ pageSize: 2, pageToken: page1.nextPageToken });
    expect(page2.streams.map((s) => s.ref?.streamId)).toEqual([ids[0]]);
    expect(page2.nextPageToken).toBe("");
    expect((await errorOf(client.listStreams({ pageToken: "garbage" })))?.code).toBe(Code.InvalidArgument);
  });
});

describe("metrics", () => {
  it("counts published and delivered bytes and live delivery latency", async () => {
    const r = await runtime();
    const client = clientFor(r);
    const id = (await client.initStream({ payloadType: PinType.TEXT })).stream?.ref?.streamId ?? "";
    const subscriber = collectEvents(client.subscribe({ streamId: id }));
    await new Promise((resolve) => setTimeout(resolve, 20));
    await client.publishBatch({ streamId: id, payloads: [{ data: utf8("hello") }, { data: utf8("world!") }] });
    await client.closeStream({ streamId: id });
    await within(subscriber, 5_000, "subscriber");
    expect(r.metrics.streamBandwidthBytes).toEqual({ published: 11, delivered: 11 });
    expect(r.metrics.streamLatencyMilliseconds.count).toBe(2);
  });
});

async function* messages(...items: PublishMessage[]): AsyncGenerator<PublishMessage> {
  yield* items;
}

async function collectAll<T>(responses: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const response of responses) out.push(response);
  return out;
}
