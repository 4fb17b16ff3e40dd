import { type Client, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { PinType } from "../../gen/mentatlab/v1/common_pb.js";
import { type AdaptBitrate, StreamService } from "../../gen/mentatlab/v1/stream_pb.js";
import { testPrincipal } from "../../test/support/in-memory.js";
import { startCuttingProxy, type CuttingProxy } from "../cli/ctl/testing.js";
import type { RunningServer } from "../server/server.js";
import { principalKey } from "../shared/principal.js";
import type { StreamRuntime } from "./index.js";
import { dataMessage, type PublishMessage, Pushable, serveOverSockets } from "./testing.js";

// Bitrate advice from what subscribers really receive, over real sockets: the one-port server with the
// encoded Subscribe fast path, a producer at 500 kbit/s, and readers whose link a TCP proxy paces.

const windowMs = 1_000;
/** 500 kbit/s in 100 ms chunks. */
const chunkBytes = 6_250;
const chunkIntervalMs = 100;

let running: { server: RunningServer; runtime: StreamRuntime; proxy?: CuttingProxy } | undefined;
afterEach(async () => {
  await running?.proxy?.close();
  await running?.server.close();
  await running?.runtime.close();
  running = undefined;
});

/** Each caller is the user its bearer token names, all in one workspace, as the gateway would resolve keys. */
const userFromBearer: Interceptor = (next) => (req) => {
  const user = req.header.get("authorization")?.replace(/^Bearer /, "") || "alice";
  req.contextValues.set(principalKey, testPrincipal({ user, workspace: "ws-advice" }));
  return next(req);
};

async function serve(): Promise<{ server: RunningServer; runtime: StreamRuntime }> {
  const served = await serveOverSockets({ bitrateWindowMs: windowMs }, userFromBearer);
  running = served;
  return served;
}

function clientAs(user: string, baseUrl: string): Client<typeof StreamService> {
  return createClient(
    StreamService,
    createGrpcTransport({ baseUrl, interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${user}`), next(req))] }),
  );
}

/** Reads the stream to its end as fast as its link allows; resolves with the payload bytes. */
async function readAll(client: Client<typeof StreamService>, streamId: string, signal: AbortSignal): Promise<number> {
  let bytes = 0;
  for await (const event of client.subscribe({ streamId }, { signal })) {
    if (event.event.case === "data") bytes += event.event.value.data.byteLength;
    if (event.event.case === "end") break;
  }
  return bytes;
}

async function openAudioStream(producer: Client<typeof StreamService>): Promise<string> {
  const { stream } = await producer.initStream({ payloadType: PinType.AUDIO, mimeType: "audio/ogg" });
  return stream?.ref?.streamId ?? "";
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("bitrate advice from per-subscriber delivery", () => {
  it("tells a 500 kbit/s producer on its Publish stream that a reader at 16 KiB/s falls behind, naming it", async () => {
    const { server } = await serve();
    const proxy = await startCuttingProxy(server.url, { downloadBytesPerSecond: 16 * 1024 });
    if (running) running.proxy = proxy;
    const producer = clientAs("alice", server.url);
    const streamId = await openAudioStream(producer);
    const stop = new AbortController();
    const fast = readAll(clientAs("fast-reader", server.url), streamId, stop.signal).catch(() => 0);
    const slow = readAll(clientAs("slow-reader", proxy.url), streamId, stop.signal).catch(() => 0);

    const requests = new Pushable<PublishMessage>();
    requests.push({ part: { case: "open", value: { streamId } } });
    const advice: AdaptBitrate[] = [];
    const responses = (async () => {
      for await (const response of producer.publish(requests)) if (response.event.case === "adaptBitrate") advice.push(response.event.value);
    })();
    // Advice repeats once a window while the reader is behind; its rate settles on the link's once the
    // socket buffers that filled at first (at the full rate) are out of the measured span.
    const settled = () => Number(advice.at(-1)?.measuredBitsPerSecond ?? Infinity) < 200_000;
    const startedAt = Date.now();
    for (let seq = 1n; !settled() && Date.now() - startedAt < 20_000; seq++) {
      requests.push(dataMessage(new Uint8Array(chunkBytes), seq));
      await sleep(chunkIntervalMs);
    }
    requests.end();
    await responses;
    stop.abort();
    await Promise.all([fast, slow]);

    expect(advice.length, "no advice within 20 s").toBeGreaterThan(0);
    expect(new Set(advice.map((a) => a.subscriber))).toEqual(new Set(["user slow-reader"]));
    const last = advice.at(-1);
    // The proxy paces 16 KiB/s (131 kbit/s) of TCP, gRPC framing included.
    expect(Number(last?.measuredBitsPerSecond)).toBeGreaterThan(60_000);
    expect(Number(last?.measuredBitsPerSecond)).toBeLessThan(200_000);
    expect(Number(last?.producedBitsPerSecond)).toBeGreaterThan(300_000);
    expect(Number(last?.producedBitsPerSecond)).toBeLessThan(650_000);
    expect(last?.suggestedBitsPerSecond).toBe(BigInt(Math.floor(Number(last?.measuredBitsPerSecond) * 0.8)));
    expect(last?.reason).toMatch(
      /^subscriber user slow-reader receives \d+ kbit\/s of the \d+ kbit\/s produced over the last [\d.]+ s and is [\d.]+ s behind; lower the encoder bitrate to at most \d+ kbit\/s$/,
    );
  }, 30_000);

  it("gives no advice to a 500 kbit/s producer whose readers keep up, nor to one nobody reads", async () => {
    const { server } = await serve();
    const producer = clientAs("alice", server.url);
    const [read, unread] = [await openAudioStream(producer), await openAudioStream(producer)];
    const stop = new AbortController();
    const readers = ["reader-1", "reader-2"].map((user) => readAll(clientAs(user, server.url), read, stop.signal));
    const advice: AdaptBitrate[] = [];
    // Four windows' worth, in PublishBatch calls.
    for (let seq = 1n; seq <= 40n; seq++) {
      for (const streamId of [read, unread]) {
        const { adaptBitrate } = await producer.publishBatch({ streamId, payloads: [{ data: new Uint8Array(chunkBytes), clientSeq: seq }] });
        if (adaptBitrate) advice.push(adaptBitrate);
      }
      await sleep(chunkIntervalMs);
    }
    await Promise.all([read, unread].map((streamId) => producer.closeStream({ streamId })));
    expect(await Promise.all(readers)).toEqual([40 * chunkBytes, 40 * chunkBytes]);
    expect(advice).toEqual([]);
  }, 30_000);
});
