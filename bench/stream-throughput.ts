// Throughput of one video stream (64 KiB chunks) to 1 and to 10 subscribers, as a ratio to raw
// node:http2 sending the same bytes to the same number of clients in the same run. The servers run in
// a child process with its default retention and lag bound; the producer and the subscribers here are
// lean HTTP/2 clients (messages framed before the clock starts, responses counted by their envelope
// prefixes, nothing decoded), so the figures are the server's. The producer stays at most 4 MiB ahead of
// the slowest subscriber, as a live producer paced by its audience: the figure is the rate the server
// sustains, not how fast it can fill its buffers.
// `npx tsx bench/stream-throughput.ts`; BENCH_MIB (per subscriber, default 128), BENCH_SUBSCRIBERS
// (default "1,10"), BENCH_BACKENDS (default "memory,redis"), BENCH_SUBSCRIBE_PATHS (default "encoded";
// "connect,encoded" adds Subscribe through the generic fast path, each event encoded per subscriber),
// REDIS_URL (default: a private redis-server).
import { randomBytes } from "node:crypto";
import { type ClientHttp2Session, connect, createServer, type ServerHttp2Stream } from "node:http2";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { create, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { PinType } from "../gen/mentatlab/v1/common_pb.js";
import { PublishRequestSchema, StreamService, SubscribeRequestSchema } from "../gen/mentatlab/v1/stream_pb.js";
import { envelope } from "../services/server/fast-path/index.js";
import { serveBenchChild, startBenchChild } from "./child-process-support.js";
import { leanCall } from "./lean-client-support.js";
import { type Backend, type SubscribePath, benchRedis, machineLoad, MiB, startStreamServer } from "./stream-bench-support.js";

const CHUNK = 64 * 1024;
const totalMiB = Number(process.env.BENCH_MIB ?? 128);
const chunks = Math.floor((totalMiB * MiB) / CHUNK);
const fanouts = (process.env.BENCH_SUBSCRIBERS ?? "1,10").split(",").map(Number);
const backends = (process.env.BENCH_BACKENDS ?? "memory,redis").split(",") as Backend[];
const paths = (process.env.BENCH_SUBSCRIBE_PATHS ?? "encoded").split(",") as SubscribePath[];
const chunk = randomBytes(CHUNK);
// How far the producer may run ahead of the slowest subscriber: half the default lag bound (8 MiB).
const leadChunks = (4 * MiB) / CHUNK;

function session(url: string): Promise<ClientHttp2Session> {
  const s = connect(url, { settings: { initialWindowSize: 4 * MiB } });
  return new Promise((resolve, reject) => {
    s.once("connect", () => {
      s.setLocalWindowSize(32 * MiB);
      resolve(s);
    });
    s.once("error", reject);
  });
}

/** Bytes of a response body, read to the end. */
async function drainBody(stream: AsyncIterable<Buffer>): Promise<number> {
  let bytes = 0;
  for await (const piece of stream) bytes += piece.byteLength;
  return bytes;
}

/** Child process: a bare node:http2 server writing the chunks, with backpressure and the same windows: the ceiling. */
async function serveRaw(): Promise<void> {
  const server = createServer({ settings: { initialWindowSize: 4 * MiB } });
  server.on("session", (s) => s.setLocalWindowSize(32 * MiB));
  server.on("stream", (stream: ServerHttp2Stream) => {
    stream.respond({ ":status": 200 });
    let sent = 0;
    const pump = (): void => {
      while (sent < chunks) {
        sent++;
        if (!stream.write(chunk)) {
          stream.once("drain", pump);
          return;
        }
      }
      stream.end();
    };
    pump();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  await serveBenchChild({ port: (server.address() as { port: number }).port });
  server.close();
}

async function rawHttp2(port: number, subscribers: number): Promise<number> {
  const sessions = await Promise.all(Array.from({ length: subscribers }, () => session(`http://127.0.0.1:${port}`)));
  const start = performance.now();
  const received = await Promise.all(sessions.map((s) => drainBody(s.request({ ":path": "/" }).end())));
  const seconds = (performance.now() - start) / 1000;
  for (const s of sessions) s.close();
  if (received.some((bytes) => bytes !== chunks * CHUNK)) throw new Error("raw http2 lost bytes");
  return (chunks * CHUNK) / MiB / seconds;
}

/** Child process: the StreamService on `BENCH_BACKEND` with its default retention and lag bound. */
async function serveStreams(): Promise<void> {
  const bench = await startStreamServer(process.env.BENCH_BACKEND as Backend, process.env.REDIS_URL, {}, process.env.BENCH_SUBSCRIBE_PATH as SubscribePath);
  await serveBenchChild({ url: bench.server.url });
  await bench.close();
}

/** Payload bytes each subscriber has received so far; the producer stays a bounded lead ahead of the slowest. */
class Progress {
  private readonly received: number[];
  private waiter: (() => void) | undefined;

  constructor(subscribers: number) {
    this.received = new Array<number>(subscribers).fill(0);
  }

  add(subscriber: number, bytes: number): void {
    this.received[subscriber] = (this.received[subscriber] ?? 0) + bytes;
    const wake = this.waiter;
    this.waiter = undefined;
    wake?.();
  }

  /** Resolves once every subscriber has received at least `bytes`. */
  async reached(bytes: number): Promise<void> {
    while (Math.min(...this.received) < bytes) await new Promise<void>((resolve) => (this.waiter = resolve));
  }
}

/**
 * Subscribe over the Connect protocol on a raw HTTP/2 stream, counting payload bytes by reading only
 * each envelope's 5-byte prefix: the client costs what a remote one would, and the figure measures
 * the server.
 */
async function leanSubscribe(s: ClientHttp2Session, streamId: string, progress: Progress, subscriber: number): Promise<number> {
  const request = envelope(toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, { streamId })));
  const stream = s.request({
    ":method": "POST",
    ":path": `/${StreamService.typeName}/${StreamService.method.subscribe.name}`,
    "content-type": "application/connect+proto",
    "connect-protocol-version": "1",
  });
  stream.end(request);
  let messageBytes = 0;
  const prefix = Buffer.alloc(5);
  let prefixFill = 0;
  // Bytes of the current message still to come; the end-of-stream message is kept to read its error.
  let remaining = 0;
  let endOfStream: Buffer[] | undefined;
  for await (const piece of stream as AsyncIterable<Buffer>) {
    let pos = 0;
    while (pos < piece.byteLength) {
      if (remaining === 0) {
        const taken = Math.min(5 - prefixFill, piece.byteLength - pos);
        piece.copy(prefix, prefixFill, pos, pos + taken);
        prefixFill += taken;
        pos += taken;
        if (prefixFill < 5) break;
        prefixFill = 0;
        remaining = prefix.readUInt32BE(1);
        if ((prefix[0] ?? 0) & 2) endOfStream = [];
        continue;
      }
      const taken = Math.min(remaining, piece.byteLength - pos);
      if (endOfStream) endOfStream.push(piece.subarray(pos, pos + taken));
      else {
        messageBytes += taken;
        progress.add(subscriber, taken);
      }
      remaining -= taken;
      pos += taken;
    }
  }
  const end = endOfStream ? (JSON.parse(Buffer.concat(endOfStream).toString("utf8")) as { error?: { message?: string } }) : {};
  if (end.error) throw new Error(`subscribe failed: ${end.error.message}`);
  return messageBytes;
}

/** The producer's messages, framed before the clock starts: the figure is the server's, not the encoder's. */
function publishBody(streamId: string): Uint8Array[] {
  const framed = [envelope(toBinary(PublishRequestSchema, create(PublishRequestSchema, { part: { case: "open", value: { streamId } } })))];
  for (let i = 1; i <= chunks; i++) {
    framed.push(
      envelope(toBinary(PublishRequestSchema, create(PublishRequestSchema, { part: { case: "data", value: { data: chunk, clientSeq: BigInt(i) } } }))),
    );
  }
  return framed;
}

/**
 * The producer's Publish call on a raw HTTP/2 stream, acknowledgements drained. Like a live producer
 * paced by its audience, it stays at most `leadBytes` ahead of the slowest subscriber, so the server
 * runs on its default retention and the figure is the rate it sustains.
 */
async function leanPublish(s: ClientHttp2Session, body: readonly Uint8Array[], progress: Progress): Promise<void> {
  async function* requests(): AsyncGenerator<Uint8Array> {
    for (const [index, message] of body.entries()) {
      await progress.reached((index - leadChunks) * CHUNK);
      yield message;
    }
  }
  await leanCall(s, { path: `/${StreamService.typeName}/${StreamService.method.publish.name}`, contentType: "application/grpc", body: requests() });
}

async function streamService(url: string, subscribers: number): Promise<number> {
  const control = createClient(StreamService, createGrpcTransport({ baseUrl: url }));
  const id = (await control.initStream({ payloadType: PinType.VIDEO, mimeType: "video/mp4" })).stream?.ref?.streamId ?? "";
  const producer = await session(url);
  const sessions = await Promise.all(Array.from({ length: subscribers }, () => session(url)));
  const body = publishBody(id);
  const start = performance.now();
  const progress = new Progress(subscribers);
  const received = Promise.all(sessions.map((s, index) => leanSubscribe(s, id, progress, index)));
  await leanPublish(producer, body, progress);
  await control.closeStream({ streamId: id });
  const bytes = await received;
  const seconds = (performance.now() - start) / 1000;
  for (const s of [producer, ...sessions]) s.close();
  // Each message carries a little framing around its chunk.
  if (bytes.some((b) => b < chunks * CHUNK)) throw new Error(`a subscriber got less than was published: ${bytes}`);
  return (chunks * CHUNK) / MiB / seconds;
}

async function measure(): Promise<void> {
  const script = fileURLToPath(import.meta.url);
  const redis = backends.includes("redis") ? await benchRedis() : undefined;
  const raw = await startBenchChild<{ port: number }>(script, process.env, "serve-raw");
  try {
    console.log(
      `stream throughput: ${totalMiB} MiB of 64 KiB chunks per subscriber; MiB/s each subscriber received ` +
        "(publish start → last stream_end); raw = bare node:http2 writing the same chunks; servers in a child process, lean clients",
    );
    console.log(machineLoad());
    console.log(
      "subscribers | raw http2 MiB/s | backend | subscribe path | StreamService MiB/s | ratio | aggregate MiB/s | aggregate / single raw | server CPU ms per MiB published",
    );
    console.log("--- | --- | --- | --- | --- | --- | --- | --- | ---");
    const singleRaw = await rawHttp2(raw.endpoints.port, 1);
    for (const subscribers of fanouts) {
      const rawRate = subscribers === 1 ? singleRaw : await rawHttp2(raw.endpoints.port, subscribers);
      for (const backend of backends) {
        for (const path of paths) {
          const env = { ...process.env, BENCH_BACKEND: backend, BENCH_SUBSCRIBE_PATH: path, ...(redis ? { REDIS_URL: redis.url } : {}) };
          const server = await startBenchChild<{ url: string }>(script, env, "serve-streams");
          const cpuBefore = await server.cpuMicros();
          const ours = await streamService(server.endpoints.url, subscribers);
          // Server CPU per MiB published (in, then out to every subscriber): it holds on a busy machine.
          const cpuPerMiB = ((await server.cpuMicros()) - cpuBefore) / 1000 / totalMiB;
          await server.stop();
          console.log(
            `${subscribers} | ${rawRate.toFixed(0)} | ${backend} | ${path} | ${ours.toFixed(0)} | ${(ours / rawRate).toFixed(2)} | ${(ours * subscribers).toFixed(0)} | ${((ours * subscribers) / singleRaw).toFixed(2)} | ${cpuPerMiB.toFixed(1)}`,
          );
        }
      }
    }
  } finally {
    await raw.stop();
    await redis?.stop();
  }
}

if (process.argv[2] === "serve-raw") await serveRaw();
else if (process.argv[2] === "serve-streams") await serveStreams();
else await measure();
