// Throughput of one video stream (64 KiB chunks) to 1 and to 10 subscribers, as a ratio to raw
// node:http2 sending the same bytes to the same number of clients in the same run.
// `npx tsx bench/stream-throughput.ts`; BENCH_MIB (per subscriber, default 128), BENCH_SUBSCRIBERS
// (default "1,10"), BENCH_BACKENDS (default "memory,redis"), BENCH_SUBSCRIBE_PATHS (default "encoded";
// "connect,encoded" adds Subscribe through Connect alone), REDIS_URL (default: a private redis-server).
import { randomBytes } from "node:crypto";
import { type ClientHttp2Session, connect, createServer, type ServerHttp2Stream } from "node:http2";
import { performance } from "node:perf_hooks";
import { create, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { PinType } from "../gen/mentatlab/v1/common_pb.js";
import { type PublishRequestSchema, StreamService, SubscribeRequestSchema } from "../gen/mentatlab/v1/stream_pb.js";
import { type Backend, type SubscribePath, benchRedis, machineLoad, MiB, startStreamServer } from "./stream-bench-support.js";

const CHUNK = 64 * 1024;
const totalMiB = Number(process.env.BENCH_MIB ?? 128);
const chunks = Math.floor((totalMiB * MiB) / CHUNK);
const fanouts = (process.env.BENCH_SUBSCRIBERS ?? "1,10").split(",").map(Number);
const backends = (process.env.BENCH_BACKENDS ?? "memory,redis").split(",") as Backend[];
const paths = (process.env.BENCH_SUBSCRIBE_PATHS ?? "encoded").split(",") as SubscribePath[];
const chunk = randomBytes(CHUNK);

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

/** The same chunks from a bare node:http2 server, with backpressure and the same windows: the ceiling. */
async function rawHttp2(subscribers: number): Promise<number> {
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
  const { port } = server.address() as { port: number };
  const sessions = await Promise.all(Array.from({ length: subscribers }, () => session(`http://127.0.0.1:${port}`)));
  const start = performance.now();
  const received = await Promise.all(sessions.map((s) => drainBody(s.request({ ":path": "/" }).end())));
  const seconds = (performance.now() - start) / 1000;
  for (const s of sessions) s.close();
  server.close();
  if (received.some((bytes) => bytes !== chunks * CHUNK)) throw new Error("raw http2 lost bytes");
  return (chunks * CHUNK) / MiB / seconds;
}

/**
 * Subscribe over the Connect protocol on a raw HTTP/2 stream, counting payload bytes without
 * decoding: the client costs what a remote one would, and the figure measures the server.
 */
async function leanSubscribe(s: ClientHttp2Session, streamId: string): Promise<number> {
  const request = toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, { streamId }));
  const envelope = Buffer.alloc(5 + request.byteLength);
  envelope.writeUInt32BE(request.byteLength, 1);
  envelope.set(request, 5);
  const stream = s.request({
    ":method": "POST",
    ":path": `/${StreamService.typeName}/${StreamService.method.subscribe.name}`,
    "content-type": "application/connect+proto",
    "connect-protocol-version": "1",
  });
  stream.end(envelope);
  let messageBytes = 0;
  let pending: Buffer = Buffer.alloc(0);
  // Pieces of a message still incomplete: joined once it is whole, not on every DATA frame.
  const parts: Buffer[] = [];
  let partsBytes = 0;
  for await (const piece of stream as AsyncIterable<Buffer>) {
    parts.push(piece);
    partsBytes += piece.byteLength;
    const needed = pending.byteLength >= 5 ? 5 + pending.readUInt32BE(1) : 5;
    if (pending.byteLength + partsBytes < needed) continue;
    pending = Buffer.concat([pending, ...parts.splice(0)]);
    partsBytes = 0;
    while (pending.byteLength >= 5) {
      const length = pending.readUInt32BE(1);
      if (pending.byteLength < 5 + length) break;
      if ((pending[0] ?? 0) & 2) {
        const end = JSON.parse(pending.subarray(5, 5 + length).toString("utf8")) as { error?: { message?: string } };
        if (end.error) throw new Error(`subscribe failed: ${end.error.message}`);
      } else {
        messageBytes += length;
      }
      pending = pending.subarray(5 + length);
    }
  }
  return messageBytes;
}

async function streamService(backend: Backend, path: SubscribePath, redisUrl: string | undefined, subscribers: number): Promise<number> {
  // Everything stays retained, so a subscriber that falls behind the producer is not cut off.
  const bench = await startStreamServer(
    backend,
    redisUrl,
    { retainedMaxEvents: chunks * 2, retainedMaxBytes: chunks * CHUNK * 2 },
    path,
  );
  try {
    const producer = bench.client();
    const id = (await producer.initStream({ payloadType: PinType.VIDEO, mimeType: "video/mp4" })).stream?.ref?.streamId ?? "";
    const sessions = await Promise.all(Array.from({ length: subscribers }, () => session(bench.server.url)));
    const start = performance.now();
    const received = Promise.all(sessions.map((s) => leanSubscribe(s, id)));
    async function* messages(): AsyncGenerator<MessageInitShape<typeof PublishRequestSchema>> {
      yield { part: { case: "open", value: { streamId: id } } };
      for (let i = 1; i <= chunks; i++) yield { part: { case: "data", value: { data: chunk, clientSeq: BigInt(i) } } };
    }
    for await (const response of producer.publish(messages())) void response;
    await producer.closeStream({ streamId: id });
    const bytes = await received;
    const seconds = (performance.now() - start) / 1000;
    for (const s of sessions) s.close();
    // Each message carries a little framing around its chunk.
    if (bytes.some((b) => b < chunks * CHUNK)) throw new Error(`a subscriber got less than was published: ${bytes}`);
    return (chunks * CHUNK) / MiB / seconds;
  } finally {
    await bench.close();
  }
}

const redis = backends.includes("redis") ? await benchRedis() : undefined;
try {
  console.log(
    `stream throughput: ${totalMiB} MiB of 64 KiB chunks per subscriber; MiB/s each subscriber received ` +
      "(publish start → last stream_end); raw = bare node:http2 writing the same chunks; one process",
  );
  console.log(machineLoad());
  console.log("subscribers | raw http2 MiB/s | backend | subscribe path | StreamService MiB/s | ratio | aggregate MiB/s");
  console.log("--- | --- | --- | --- | --- | --- | ---");
  for (const subscribers of fanouts) {
    const raw = await rawHttp2(subscribers);
    for (const backend of backends) {
      for (const path of paths) {
        const ours = await streamService(backend, path, redis?.url, subscribers);
        console.log(
          `${subscribers} | ${raw.toFixed(0)} | ${backend} | ${path} | ${ours.toFixed(0)} | ${(ours / raw).toFixed(2)} | ${(ours * subscribers).toFixed(0)}`,
        );
      }
    }
  }
} finally {
  await redis?.stop();
}
