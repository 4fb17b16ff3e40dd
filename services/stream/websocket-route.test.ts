import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { mkdtemp, rm } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StreamService, StreamState } from "../../gen/mentatlab/v1/stream_pb.js";
import { startRedis, type RedisServer } from "../../test/harness/index.js";
import { initStream, postJson, type ReceivedFrame, StreamSocket, ticketFor } from "../../test/support/stream-websocket.js";
import { startCuttingProxy } from "../cli/ctl/testing.js";
import { type EmbeddedMesh, startEmbedded } from "../mesh/embedded.js";

const keys = { producer: "ws-producer-key-0123456789", consumer: "ws-consumer-key-0123456789", other: "ws-other-key-00123456789" };
const apiKeys = [`${keys.producer}=pat@acme:multimodal_producer`, `${keys.consumer}=carl@acme:multimodal_consumer`, `${keys.other}=olga@globex:admin`].join(
  ",",
);

interface Mesh {
  readonly mesh: EmbeddedMesh;
  close(): Promise<void>;
}

async function startMesh(env: Record<string, string> = {}): Promise<Mesh> {
  const dataDir = await mkdtemp(join(tmpdir(), "ws-streams-"));
  const mesh = await startEmbedded({ port: 0, dataDir, env: { PATH: process.env.PATH, MENTATLAB_API_KEYS: apiKeys, ...env } });
  return {
    mesh,
    async close() {
      await mesh.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

function streamClient(url: string) {
  return createClient(StreamService, createConnectTransport({ baseUrl: url, httpVersion: "1.1" }));
}

async function lastSeqOf(url: string, streamId: string): Promise<{ lastSeq: bigint; state: StreamState }> {
  const { stream } = await streamClient(url).getStream({ streamId }, { headers: { authorization: `Bearer ${keys.consumer}` } });
  return { lastSeq: stream?.lastSeq ?? -1n, state: stream?.state ?? StreamState.UNSPECIFIED };
}

/** Opens a producer socket and sends stream_start; the first ack (where to resume). */
async function startPublishing(wsUrl: string, options: { key?: string } = {}): Promise<{ socket: StreamSocket; ack: Record<string, unknown> }> {
  const socket = await StreamSocket.open(wsUrl, options);
  socket.sendJson({ type: "stream_start" });
  return { socket, ack: await socket.nextText() };
}

function publishText(socket: StreamSocket, clientSeq: number, text: string): void {
  socket.sendJson({ type: "stream_data", client_seq: clientSeq, attributes: { n: String(clientSeq) } });
  socket.sendBinary(new TextEncoder().encode(text));
}

/** The payloads of a subscriber's frames, as text. */
function payloads(frames: readonly ReceivedFrame[]): string[] {
  return frames.flatMap((frame) => ("binary" in frame ? [frame.binary.toString()] : []));
}

function eventTypes(frames: readonly ReceivedFrame[]): string[] {
  return frames.flatMap((frame) => ("text" in frame ? [String(frame.text.type)] : []));
}

describe.each(["memory", "redis"] as const)("streams over WebSocket (%s store)", (backend) => {
  let redis: RedisServer | undefined;
  let m: Mesh;
  beforeAll(async () => {
    redis = backend === "redis" ? await startRedis() : undefined;
    m = await startMesh(redis ? { REDIS_URL: redis.url } : {});
  }, 30_000);
  afterAll(async () => {
    await m?.close();
    await redis?.stop();
  });

  it("POST /streams/init answers stream_id, ws_url, the SSE and Subscribe URLs; a producer publishes and a subscriber follows live", async () => {
    const url = m.mesh.url;
    const init = await initStream(url, keys.producer, { payload_type: "PIN_TYPE_TEXT", mime_type: "text/plain" });
    expect(init.stream_id).toMatch(/^st_/);
    expect(init.ws_url).toMatch(new RegExp(`^ws://127\\.0\\.0\\.1:\\d+/streams/${init.stream_id}/ws\\?ticket=mlst_`));
    expect(init.sse_url).toBe(`${url}/streams/${init.stream_id}/events`);
    expect(init.subscribe_url).toBe(`${url}/mentatlab.v1.StreamService/Subscribe`);
    expect(init.recommended_chunk_bytes).toBe(1024);

    const { socket: producer, ack } = await startPublishing(init.ws_url);
    expect(ack).toEqual({ type: "ack", last_seq: 1, last_client_seq: 0 });
    // The consumer follows with a ticket of its own, as a browser would.
    const subscriber = await StreamSocket.open((await ticketFor(url, keys.consumer, init.stream_id)).ws_url);
    subscriber.sendJson({ type: "subscribe", after_seq: 0 });
    const start = await subscriber.nextText();
    expect(start).toMatchObject({ type: "stream_start", seq: 1, stream: { ref: { streamId: init.stream_id } } });

    publishText(producer, 1, "hello");
    expect(await producer.until("ack")).toEqual({ type: "ack", last_seq: 2, last_client_seq: 1 });
    expect(await subscriber.nextText()).toMatchObject({ type: "stream_data", seq: 2, bytes: 5, attributes: { n: "1" } });
    expect((await subscriber.next()) as { binary: Buffer }).toEqual({ binary: Buffer.from("hello") });

    // Text streams may carry the payload inline.
    producer.sendJson({ type: "stream_data", client_seq: 2, text: "world" });
    producer.sendJson({ type: "stream_end" });
    const rest = await producer.drain();
    expect(rest.frames.at(-1)).toEqual({ text: { type: "closed", last_seq: 4 } });
    expect(rest.close).toEqual({ code: 1000, reason: "stream ended" });

    const followed = await subscriber.drain();
    expect(eventTypes(followed.frames)).toEqual(["stream_data", "stream_end"]);
    expect(payloads(followed.frames)).toEqual(["world"]);
    expect(followed.close.code).toBe(1000);
    expect(await lastSeqOf(url, init.stream_id)).toEqual({ lastSeq: 4n, state: StreamState.COMPLETED });
  });

  it("a producer that reconnects resumes from the first ack's last_client_seq; resent payloads are dropped, and a subscriber resumes after its last seq", async () => {
    const url = m.mesh.url;
    const init = await initStream(url, keys.producer, { payload_type: "PIN_TYPE_AUDIO", mime_type: "audio/webm;codecs=opus" });
    const first = await startPublishing(init.ws_url);
    for (let n = 1; n <= 3; n++) publishText(first.socket, n, `chunk-${n}`);
    while (((await first.socket.until("ack")).last_client_seq as number) < 3);
    const subscriber = await StreamSocket.open((await ticketFor(url, keys.consumer, init.stream_id)).ws_url);
    subscriber.sendJson({ type: "subscribe" });
    await subscriber.until("stream_data");
    const firstPayload = await subscriber.next();
    expect(firstPayload).toEqual({ binary: Buffer.from("chunk-1") });
    // Both drop the connection without a goodbye, as a lost network would.
    first.socket.ws.terminate();
    subscriber.ws.terminate();

    // The first ticket may have been used already; a fresh one comes from /ticket, or a bearer header works.
    const again = await startPublishing(`${url.replace("http", "ws")}/streams/${init.stream_id}/ws`, { key: keys.producer });
    expect(again.ack).toEqual({ type: "ack", last_seq: 4, last_client_seq: 3 });
    // A producer unsure what arrived resends from 2: the mesh keeps each client_seq once.
    for (let n = 2; n <= 5; n++) publishText(again.socket, n, `chunk-${n}`);
    again.socket.sendJson({ type: "stream_end" });
    expect((await again.socket.drain()).close.code).toBe(1000);

    const resumed = await StreamSocket.open((await ticketFor(url, keys.consumer, init.stream_id)).ws_url);
    resumed.sendJson({ type: "subscribe", after_seq: 2 });
    const { frames, close } = await resumed.drain();
    expect(payloads(frames)).toEqual(["chunk-2", "chunk-3", "chunk-4", "chunk-5"]);
    expect(frames.flatMap((f) => ("text" in f ? [f.text.seq] : []))).toEqual([3, 4, 5, 6, 7]);
    expect(close.code).toBe(1000);
  });
});

describe("WebSocket streams: credentials, permissions, bad frames, limits, keep-alive, backpressure", () => {
  let m: Mesh;
  beforeAll(async () => {
    m = await startMesh({
      STREAM_SUBSCRIBER_MAX_LAG_BYTES: "2097152",
      STREAM_BITRATE_WINDOW_MS: "100",
      STREAM_MAX_OPEN_PER_USER: "30",
    });
  }, 30_000);
  afterAll(async () => {
    await m?.close();
  });
  const wsBase = () => m.mesh.url.replace("http", "ws");

  async function textStream(): Promise<string> {
    return (await initStream(m.mesh.url, keys.producer, { payload_type: "PIN_TYPE_TEXT" })).stream_id;
  }

  /** Connects, sends `first`, and returns the error frame and the close. */
  async function refused(url: string, first: unknown, key?: string): Promise<{ error: Record<string, unknown>; close: { code: number; reason: string } }> {
    const socket = await StreamSocket.open(url, key ? { key } : {});
    socket.sendJson(first);
    const { frames, close } = await socket.drain();
    const error = frames.find((f): f is { text: Record<string, unknown> } => "text" in f && f.text.type === "error");
    return { error: error?.text ?? {}, close };
  }

  it("POST /streams/init needs a key and stream:create, and checks the request like InitStream", async () => {
    const url = `${m.mesh.url}/streams/init`;
    expect((await postJson(url, undefined, { payload_type: "PIN_TYPE_TEXT" })).status).toBe(401);
    const consumer = await postJson(url, keys.consumer, { payload_type: "PIN_TYPE_TEXT" });
    expect(consumer.status).toBe(403);
    expect(consumer.body.message).toContain('lacks permission "stream:create"');
    // Refused before the body is looked at, as the RPC is.
    expect((await postJson(url, keys.consumer, { payload_type: "PIN_TYPE_IMAGE" })).status).toBe(403);
    const badType = await postJson(url, keys.producer, { payload_type: "PIN_TYPE_IMAGE" });
    expect(badType.status).toBe(400);
    expect(badType.body.message).toMatch(/payload_type/);
    const badMime = await postJson(url, keys.producer, { payload_type: "PIN_TYPE_AUDIO", mime_type: "text/plain" });
    expect(badMime.body.message).toBe('mime_type "text/plain" does not describe audio; use a type such as "audio/wav"');
    const unknownField = await postJson(url, keys.producer, { payload_typ: "PIN_TYPE_TEXT" });
    expect(unknownField.status).toBe(400);
    expect(unknownField.body.message).toContain("payload_typ");
    const ticketAsNobody = await postJson(`${m.mesh.url}/streams/st_0/ticket`, keys.consumer, {});
    expect(ticketAsNobody.status).toBe(404);
  });

  it("takes only WebSocket upgrades to paths it serves: an h2c offer or a WebSocket elsewhere is answered as plain HTTP/1.1", async () => {
    const metrics = await new Promise<number>((resolve, reject) => {
      // What `curl --http2` sends over plain HTTP: an upgrade offer the server may ignore.
      const req = request(
        `${m.mesh.url}/metrics`,
        { headers: { connection: "Upgrade, HTTP2-Settings", upgrade: "h2c", "http2-settings": "AAMAAABkAAQCAAAAAAIAAAAA" } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", reject);
      req.end();
    });
    expect(metrics).toBe(200);
    const elsewhere = new StreamSocket(`${wsBase()}/media/acme/nothing`, { key: keys.consumer });
    await expect(elsewhere.opened).rejects.toThrow(/Unexpected server response: 4\d\d/);
  });

  it("refuses a missing, unknown or foreign credential with 4016/4007 and a reason saying what to send", async () => {
    const id = await textStream();
    const plain = `${wsBase()}/streams/${id}/ws`;
    const none = await refused(plain, { type: "stream_start" });
    expect(none.close.code).toBe(4016);
    expect(none.close.reason).toContain("Authorization: Bearer");
    expect(none.error.code).toBe("unauthenticated");
    expect((await refused(plain, { type: "stream_start" }, "nobody-has-this-key-0000")).close).toEqual({
      code: 4016,
      reason: "the bearer key names nobody; send a configured API key",
    });
    expect((await refused(`${plain}?ticket=mlst_forged.sig`, { type: "subscribe" })).close.code).toBe(4016);
    // A ticket is good for its own stream only.
    const otherId = await textStream();
    const foreign = await refused(`${plain}?ticket=${new URL((await ticketFor(m.mesh.url, keys.consumer, otherId)).ws_url).searchParams.get("ticket")}`, {
      type: "subscribe",
    });
    expect(foreign.close).toEqual({ code: 4007, reason: `the ticket is for stream "${otherId}", not "${id}"` });
    // Another workspace does not see the stream at all.
    expect((await refused(plain, { type: "subscribe" }, keys.other)).close.code).toBe(4005);
  });

  it("checks Publish's and Subscribe's own permissions: a consumer cannot publish, a producer cannot subscribe", async () => {
    const id = await textStream();
    const consumerTicket = (await ticketFor(m.mesh.url, keys.consumer, id)).ws_url;
    const publishing = await refused(consumerTicket, { type: "stream_start" });
    expect(publishing.close.code).toBe(4007);
    expect(publishing.error.message).toContain('lacks permission "stream:create" required by mentatlab.v1.StreamService/Publish');
    const subscribing = await refused(`${wsBase()}/streams/${id}/ws`, { type: "subscribe" }, keys.producer);
    expect(subscribing.close.code).toBe(4007);
    expect(subscribing.error.message).toContain('"stream:subscribe"');
    expect(await lastSeqOf(m.mesh.url, id)).toEqual({ lastSeq: 1n, state: StreamState.OPEN });
  });

  it("closes on a bad frame with 4003 (or 1009 when too big) and the reason; what was stored stays, and the producer carries on after reconnecting", async () => {
    const id = await textStream();
    const ws = `${wsBase()}/streams/${id}/ws`;
    const { socket } = await startPublishing(ws, { key: keys.producer });
    publishText(socket, 1, "kept");
    await socket.until("ack");
    const cases: [string, (s: StreamSocket) => void, number, RegExp][] = [
      ["not JSON", (s) => s.ws.send("stream_data please"), 4003, /must be a JSON object/],
      ["unknown type", (s) => s.sendJson({ type: "stream_dat" }), 4003, /unexpected "stream_dat" frame/],
      [
        "header then text",
        (s) => (s.sendJson({ type: "stream_data", client_seq: 9 }), s.sendJson({ type: "stream_end" })),
        4003,
        /followed by one binary frame/,
      ],
      ["bad client_seq", (s) => s.sendJson({ type: "stream_data", client_seq: -1, text: "x" }), 4003, /"client_seq" must be a non-negative integer/],
      ["client_seq going back", (s) => s.sendJson({ type: "stream_data", client_seq: 1, text: "x" }), 1000, /stream ended|/],
      [
        "bad UTF-8 on a text stream",
        (s) => (s.sendJson({ type: "stream_data", client_seq: 5 }), s.sendBinary(new Uint8Array([0xff, 0xfe]))),
        4003,
        /not valid UTF-8/,
      ],
      [
        "too many attributes",
        (s) => s.sendJson({ type: "stream_data", text: "x", attributes: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"])) }),
        4003,
        /attributes/,
      ],
      ["payload over 4 MiB", (s) => s.sendBinary(new Uint8Array(4 * 1024 * 1024 + 1)), 1009, /Max payload size exceeded|/],
    ];
    socket.ws.close();
    for (const [name, send, code, reason] of cases) {
      if (code === 1000) continue; // a resent client_seq is a duplicate, not an error: covered by the resume test
      const { socket: producer } = await startPublishing(ws, { key: keys.producer });
      send(producer);
      const { frames, close } = await producer.drain();
      expect(close.code, name).toBe(code);
      if (code !== 1009) {
        expect(close.reason, name).toMatch(reason);
        expect(frames.at(-1), name).toMatchObject({ text: { type: "error", code: "invalid_argument" } });
      }
      expect(await lastSeqOf(m.mesh.url, id), name).toEqual({ lastSeq: 2n, state: StreamState.OPEN });
    }
    const { socket: last, ack } = await startPublishing(ws, { key: keys.producer });
    expect(ack).toEqual({ type: "ack", last_seq: 2, last_client_seq: 1 });
    publishText(last, 2, "after the bad frames");
    last.sendJson({ type: "stream_end" });
    expect((await last.drain()).close.code).toBe(1000);
    const follower = await StreamSocket.open(`${ws}?ticket=${new URL((await ticketFor(m.mesh.url, keys.consumer, id)).ws_url).searchParams.get("ticket")}`);
    follower.sendJson({ type: "subscribe" });
    expect(payloads((await follower.drain()).frames)).toEqual(["kept", "after the bad frames"]);
  });

  it("a header whose payload never arrived stores nothing", async () => {
    const id = await textStream();
    const ws = `${wsBase()}/streams/${id}/ws`;
    const { socket } = await startPublishing(ws, { key: keys.producer });
    socket.sendJson({ type: "stream_data", client_seq: 1 });
    socket.ws.close();
    await socket.closed;
    const { socket: again, ack } = await startPublishing(ws, { key: keys.producer });
    expect(ack).toEqual({ type: "ack", last_seq: 1, last_client_seq: 0 });
    again.ws.close();
  });

  it("a first frame that is neither stream_start nor subscribe is refused; stream_error ends the stream as failed", async () => {
    const id = await textStream();
    const ws = `${wsBase()}/streams/${id}/ws`;
    const wrong = await refused(ws, { type: "hello" }, keys.producer);
    expect(wrong.close.code).toBe(4003);
    expect(wrong.error.message).toContain('{"type": "stream_start"} to publish');
    const { socket } = await startPublishing(ws, { key: keys.producer });
    socket.sendJson({ type: "stream_error" });
    expect((await socket.drain()).close.reason).toContain('stream_error needs a non-empty "message"');
    const { socket: again } = await startPublishing(ws, { key: keys.producer });
    again.sendJson({ type: "stream_error", message: "camera unplugged" });
    expect((await again.drain()).close.code).toBe(1000);
    expect((await lastSeqOf(m.mesh.url, id)).state).toBe(StreamState.FAILED);
    const follower = await StreamSocket.open(`${ws}`, { key: keys.consumer });
    follower.sendJson({ type: "subscribe" });
    const { frames } = await follower.drain();
    expect(frames.at(-1)).toMatchObject({ text: { type: "stream_error", message: "camera unplugged", code: "aborted" } });
  });

  it("a subscriber that sends anything after subscribe is closed with 4003", async () => {
    const id = await textStream();
    const follower = await StreamSocket.open(`${wsBase()}/streams/${id}/ws`, { key: keys.consumer });
    follower.sendJson({ type: "subscribe" });
    await follower.until("stream_start");
    follower.sendJson({ type: "subscribe", after_seq: 1 });
    const { close } = await follower.drain();
    expect(close).toEqual({ code: 4003, reason: "send nothing after the subscribe frame; reconnect to change after_seq" });
  });

  it("a subscriber resuming from past the newest event or behind the buffer gets 4011 naming the seq", async () => {
    const id = await textStream();
    const follower = await StreamSocket.open(`${wsBase()}/streams/${id}/ws`, { key: keys.consumer });
    follower.sendJson({ type: "subscribe", after_seq: 99 });
    const { close } = await follower.drain();
    expect(close.code).toBe(4011);
    expect(close.reason).toContain("after_seq 99 is past the newest event");
  });

  it("passes bitrate advice on to a WebSocket producer when a subscriber falls behind", async () => {
    const init = await initStream(m.mesh.url, keys.producer, { payload_type: "PIN_TYPE_AUDIO", mime_type: "audio/webm" });
    const { socket } = await startPublishing(init.ws_url);
    // A subscriber whose link carries 16 KiB/s, while the producer sends 500 kbit/s.
    const proxy = await startCuttingProxy(m.mesh.url, { downloadBytesPerSecond: 16 * 1024 });
    const stop = new AbortController();
    const slow = (async () => {
      // gRPC over HTTP/2: its flow control carries the slow link back to the server.
      const client = createClient(StreamService, createGrpcTransport({ baseUrl: proxy.url }));
      for await (const _ of client.subscribe({ streamId: init.stream_id }, { headers: { authorization: `Bearer ${keys.consumer}` }, signal: stop.signal }))
        void _;
    })().catch(() => undefined);
    let advice: Record<string, unknown> | undefined;
    const startedAt = Date.now();
    const frames = (async () => {
      for (;;) {
        const frame = await socket.next(15_000).catch(() => undefined);
        if (!frame) return;
        if ("text" in frame && frame.text.type === "adapt_bitrate") return (advice = frame.text);
      }
    })();
    for (let n = 1; !advice && Date.now() - startedAt < 15_000; n++) {
      socket.sendJson({ type: "stream_data", client_seq: n });
      socket.sendBinary(new Uint8Array(6_250));
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await frames;
    stop.abort();
    await slow;
    await proxy.close();
    expect(advice).toMatchObject({ type: "adapt_bitrate", subscriber: "user carl", suggested_bits_per_second: expect.any(Number) });
    socket.ws.close();
  });

  it("a subscriber that stops reading is held to the lag bound (4011 naming its last seq) while the producer and a reading subscriber go on", async () => {
    const init = await initStream(m.mesh.url, keys.producer, { payload_type: "PIN_TYPE_BINARY" });
    const { socket: producer } = await startPublishing(init.ws_url);
    const reader = await StreamSocket.open(`${wsBase()}/streams/${init.stream_id}/ws`, { key: keys.consumer });
    const stalled = await StreamSocket.open(`${wsBase()}/streams/${init.stream_id}/ws`, { key: keys.consumer });
    reader.sendJson({ type: "subscribe" });
    stalled.sendJson({ type: "subscribe" });
    await reader.until("stream_start");
    await stalled.until("stream_start");
    // The stalled client stops reading its socket: TCP fills, the server stops writing to it.
    stalled.ws.pause();
    const chunk = new Uint8Array(64 * 1024).fill(7);
    const total = 512;
    let read = 0;
    // The producer keeps within half a MiB of the reading subscriber, so only the stalled one lags.
    for (let n = 1; n <= total; n++) {
      producer.sendJson({ type: "stream_data", client_seq: n });
      producer.sendBinary(chunk);
      while (read < n - 8) if ("binary" in (await reader.next(10_000))) read++;
    }
    producer.sendJson({ type: "stream_end" });
    expect((await producer.drain(20_000)).close.code).toBe(1000);
    const rest = await reader.drain(20_000);
    expect(read + payloads(rest.frames).length).toBe(total);
    expect(rest.close.code).toBe(1000);
    stalled.ws.resume();
    const { frames, close } = await stalled.drain(20_000);
    expect(close.code).toBe(4011);
    const error = frames.at(-1) as { text: { type: string; code: string; message: string } };
    expect(error.text).toMatchObject({ type: "error", code: "out_of_range" });
    // It may resume from exactly the last event it got: the seq it names is the last one delivered.
    const lastSeq = Number(/resubscribe with after_seq=(\d+)/.exec(error.text.message)?.[1]);
    const delivered = frames.flatMap((f) => ("text" in f && f.text.type === "stream_data" ? [f.text.seq as number] : []));
    expect(lastSeq).toBe(delivered.at(-1));
    expect(delivered.length).toBeLessThan(total);
  });

  it("STREAM_MAX_OPEN_PER_USER holds for POST /streams/init as for InitStream", async () => {
    const { mesh } = m;
    let status = 200;
    let body: Record<string, unknown> = {};
    for (let n = 0; n < 40 && status === 200; n++)
      ({ status, body } = await postJson(`${mesh.url}/streams/init`, keys.producer, { payload_type: "PIN_TYPE_TEXT" }));
    expect(status).toBe(429);
    expect(body.code).toBe("resource_exhausted");
  });

  it("pings: a client that answers stays connected, one that never does is dropped", async () => {
    // Its own mesh: pings this frequent would also drop clients of busier tests on a loaded machine.
    const pinging = await startMesh({ STREAM_WS_PING_SECONDS: "0.2" });
    const id = (await initStream(pinging.mesh.url, keys.producer, { payload_type: "PIN_TYPE_TEXT" })).stream_id;
    const ws = `${pinging.mesh.url.replace("http", "ws")}/streams/${id}/ws`;
    const answering = await StreamSocket.open(ws, { key: keys.consumer });
    const silent = await StreamSocket.open(ws, { key: keys.consumer, autoPong: false });
    answering.sendJson({ type: "subscribe" });
    silent.sendJson({ type: "subscribe" });
    const dropped = await silent.drain(3_000);
    expect(dropped.close.code).toBe(1006);
    expect(answering.ws.readyState).toBe(answering.ws.OPEN);
    answering.ws.close();
    await pinging.close();
  });

  it("a shutting-down server closes open WebSockets with 1001 once the grace period is over", async () => {
    const closing = await startMesh({ MENTATLAB_SHUTDOWN_GRACE_MS: "300" });
    const init = await initStream(closing.mesh.url, keys.producer, { payload_type: "PIN_TYPE_TEXT" });
    const { socket: producer } = await startPublishing(init.ws_url);
    const follower = await StreamSocket.open(`${closing.mesh.url.replace("http", "ws")}/streams/${init.stream_id}/ws`, { key: keys.consumer });
    follower.sendJson({ type: "subscribe" });
    await follower.until("stream_start");
    const closed = closing.close();
    expect((await follower.drain(5_000)).close).toEqual({ code: 1001, reason: "server is shutting down; reconnect and resume" });
    expect((await producer.drain(5_000)).close.code).toBe(1001);
    await closed;
  });
});
