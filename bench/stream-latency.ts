// Publish → subscriber latency at a fixed message rate with many subscribers, memory and Redis backends.
// `npx tsx bench/stream-latency.ts`; BENCH_SECONDS (default 5), BENCH_RATE (msg/s, default 1000),
// BENCH_SUBSCRIBERS (comma-separated fan-outs, default 100), BENCH_CONNECTIONS (subscriber HTTP/2 connections, default 10),
// BENCH_BACKENDS (default "memory,redis"), BENCH_SUBSCRIBE_PATHS (default "encoded"; "connect,encoded"
// compares Subscribe through Connect alone with the encoded fast path, interleaved so machine load hits
// both alike), REDIS_URL (default: a private redis-server), BENCH_VIA_GATEWAY (1: subscribers and the
// producer go through a gateway in this process, as the distributed mesh's gateway forwards: "connect"
// then means the generic Connect forwarder, "encoded" the Subscribe relay; the stream server keeps its fast path).
// The server runs in this process and the clients in a child process, so each has a core, as a
// server and its remote clients would; latency is measured against the shared wall clock. Subscribers
// speak the Connect protocol on raw HTTP/2 streams (see leanSubscribe); the producer is a Connect client.
import { performance } from "node:perf_hooks";
import { fork } from "node:child_process";
import { loadavg } from "node:os";
import { connect as netConnect, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { type ClientHttp2Session, connect } from "node:http2";
import { create, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { PinType } from "../gen/mentatlab/v1/common_pb.js";
import type { Histogram } from "../services/stream/metrics.js";
import {
  type PublishRequestSchema,
  type StreamEvent,
  StreamEventSchema,
  StreamService,
  SubscribeRequestSchema,
} from "../gen/mentatlab/v1/stream_pb.js";
import { forwardingImpl } from "../services/gateway/forward.js";
import { relayService } from "../services/gateway/relay.js";
import { UpstreamSession } from "../services/gateway/upstream-session.js";
import { peerTransport } from "../services/mesh/distributed.js";
import { type RunningServer, startServer } from "../services/server/server.js";
import { type Backend, type SubscribePath, benchRedis, machineLoad, MiB, percentile, sleep, startStreamServer } from "./stream-bench-support.js";

interface Settings {
  readonly url: string;
  readonly seconds: number;
  readonly rate: number;
  readonly subscribers: number;
  readonly connections: number;
}

interface Measured {
  readonly deliveries: number[];
  readonly acks: number[];
  readonly measuredMessages: number;
  /** CPU time of the client process over its wall time, 1 = one core busy. */
  readonly clientCpu: number;
}

const PAYLOAD_BYTES = 256;
const WARMUP_MS = 500;
const decoder = new TextDecoder();
const wallClock = (): number => performance.timeOrigin + performance.now();

// Nagle's algorithm would hold back small frames waiting for ACKs: interactive streams turn it off.
function noDelayConnection(url: string): () => Socket {
  const { hostname, port } = new URL(url);
  return () => netConnect({ host: hostname, port: Number(port), noDelay: true });
}

function clientOf(url: string) {
  return createClient(
    StreamService,
    createConnectTransport({
      baseUrl: url,
      httpVersion: "2",
      nodeOptions: { settings: { initialWindowSize: 4 * MiB }, createConnection: noDelayConnection(url) },
    }),
  );
}

/** The client side: subscribers first, then a producer paced at `rate`; runs on the worker thread. */
async function measure(settings: Settings): Promise<Measured> {
  const cpuBefore = process.cpuUsage();
  const wallBefore = performance.now();
  const sessions = Array.from({ length: settings.connections }, () => {
    const session = connect(settings.url, {
      settings: { initialWindowSize: 4 * MiB },
      createConnection: noDelayConnection(settings.url),
    });
    session.once("connect", () => session.setLocalWindowSize(32 * MiB));
    return session;
  });
  const producer = clientOf(settings.url);
  const id = (await producer.initStream({ payloadType: PinType.TEXT })).stream?.ref?.streamId ?? "";
  const deliveries: number[] = [];
  let measureFrom = Number.POSITIVE_INFINITY;
  let ready = 0;
  const subscribers = Array.from({ length: settings.subscribers }, async (_, i) => {
    const session = sessions[i % settings.connections];
    if (!session) throw new Error("no session");
    for await (const event of leanSubscribe(session, id)) {
      if (event.event.case === "start") ready++;
      if (event.event.case !== "data") continue;
      const sentAt = Number(decoder.decode(event.event.value.data).trimEnd());
      if (sentAt >= measureFrom) deliveries.push(wallClock() - sentAt);
    }
  });
  while (ready < settings.subscribers) await sleep(10);

  const total = Math.round(settings.seconds * settings.rate);
  const intervalMs = 1000 / settings.rate;
  const sent = new Map<bigint, number>();
  let measuredMessages = 0;
  async function* messages(): AsyncGenerator<MessageInitShape<typeof PublishRequestSchema>> {
    yield { part: { case: "open", value: { streamId: id } } };
    const start = performance.now();
    for (let i = 1; i <= total; i++) {
      const wait = start + i * intervalMs - performance.now();
      if (wait > 1) await sleep(wait);
      const now = wallClock();
      if (i === 1) measureFrom = now + WARMUP_MS;
      if (now >= measureFrom) measuredMessages++;
      sent.set(BigInt(i), now);
      const stamp = now.toFixed(3).padEnd(PAYLOAD_BYTES, " ");
      yield { part: { case: "data", value: { data: new TextEncoder().encode(stamp), clientSeq: BigInt(i) } } };
    }
  }
  const acks: number[] = [];
  for await (const response of producer.publish(messages())) {
    if (response.event.case !== "ack") continue;
    const sentAt = sent.get(response.event.value.lastClientSeq);
    if (sentAt !== undefined && sentAt >= measureFrom) acks.push(wallClock() - sentAt);
  }
  await producer.closeStream({ streamId: id });
  await Promise.all(subscribers);
  for (const session of sessions) session.close();
  const cpu = process.cpuUsage(cpuBefore);
  const clientCpu = (cpu.user + cpu.system) / 1000 / (performance.now() - wallBefore);
  return { deliveries, acks, measuredMessages, clientCpu };
}

/**
 * Subscribe over the Connect protocol on a raw HTTP/2 stream: a client with no more per-message work
 * than a remote one would spend on its own CPU, so the two cores measure the server, not 100 clients.
 */
async function* leanSubscribe(session: ClientHttp2Session, streamId: string): AsyncGenerator<StreamEvent> {
  const request = toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, { streamId }));
  const envelope = Buffer.alloc(5 + request.byteLength);
  envelope.writeUInt32BE(request.byteLength, 1);
  envelope.set(request, 5);
  const stream = session.request({
    ":method": "POST",
    ":path": `/${StreamService.typeName}/${StreamService.method.subscribe.name}`,
    "content-type": "application/connect+proto",
    "connect-protocol-version": "1",
  });
  stream.end(envelope);
  let pending: Buffer = Buffer.alloc(0);
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    pending = pending.byteLength === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.byteLength >= 5) {
      const length = pending.readUInt32BE(1);
      if (pending.byteLength < 5 + length) break;
      const flags = pending[0] ?? 0;
      const message = pending.subarray(5, 5 + length);
      pending = pending.subarray(5 + length);
      // Flag 2 marks the end-of-stream message (trailers and any error, as JSON).
      if (flags & 2) {
        const end = JSON.parse(message.toString("utf8")) as { error?: { message?: string } };
        if (end.error) throw new Error(`subscribe failed: ${end.error.message}`);
        return;
      }
      yield fromBinary(StreamEventSchema, message);
    }
  }
}

/** p50 and p99 bucket bounds of the server's own store→hand-off histogram. */
function serverSide(histogram: Histogram): string {
  const bound = (p: number): string => {
    let seen = 0;
    for (const [i, count] of histogram.counts.entries()) {
      seen += count;
      if (seen >= (p / 100) * histogram.count) return `≤${histogram.bounds[i]}`;
    }
    return `>${histogram.bounds.at(-1)}`;
  };
  return `${bound(50)} / ${bound(99)}`;
}

const viaGateway = process.env.BENCH_VIA_GATEWAY === "1";

/** A gateway in front of `upstreamUrl` serving Subscribe on `path`, as the distributed mesh's gateway does. */
async function startBenchGateway(upstreamUrl: string, path: SubscribePath): Promise<{ server: RunningServer; close(): Promise<void> }> {
  const upstream = new UpstreamSession(upstreamUrl);
  const server = await startServer({
    port: 0,
    routes: (router) => router.service(StreamService, forwardingImpl(StreamService, peerTransport(upstreamUrl))),
    uncompressedServices: [StreamService.typeName],
    relays: path === "encoded" ? relayService(StreamService, upstream, "stream", 8 * MiB) : [],
    shutdownGraceMs: 1_000,
  });
  return {
    server,
    async close() {
      await server.close();
      upstream.close();
    },
  };
}

async function run(backend: Backend, path: SubscribePath, redisUrl: string | undefined, settings: Omit<Settings, "url">): Promise<string> {
  const bench = await startStreamServer(backend, redisUrl, {}, viaGateway ? "encoded" : path);
  const gateway = viaGateway ? await startBenchGateway(bench.server.url, path) : undefined;
  let rssSampler: NodeJS.Timeout | undefined;
  try {
    const cpuBefore = process.cpuUsage();
    const wallBefore = performance.now();
    let peakRss = process.memoryUsage.rss();
    rssSampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 100);
    const clients = fork(fileURLToPath(import.meta.url), [], {
      env: { ...process.env, BENCH_CLIENT_SETTINGS: JSON.stringify({ ...settings, url: (gateway ?? bench).server.url }) },
    });
    const measured = await new Promise<Measured>((resolve, reject) => {
      clients.once("message", (message) => resolve(message as Measured));
      clients.once("error", reject);
      clients.once("exit", (code) => reject(new Error(`client process exited with ${code}`)));
    });
    clients.kill();
    const cpu = process.cpuUsage(cpuBefore);
    const serverCpu = (cpu.user + cpu.system) / 1000 / (performance.now() - wallBefore);
    const deliveries = measured.deliveries.sort((a, b) => a - b);
    const acks = measured.acks.sort((a, b) => a - b);
    const expected = measured.measuredMessages * settings.subscribers;
    return [
      backend,
      path,
      percentile(deliveries, 50).toFixed(2),
      percentile(deliveries, 99).toFixed(2),
      (deliveries.at(-1) ?? Number.NaN).toFixed(2),
      `${deliveries.length} of ${expected}`,
      `${percentile(acks, 50).toFixed(2)} / ${percentile(acks, 99).toFixed(2)}`,
      serverSide(bench.runtime.metrics.streamLatencyMilliseconds),
      `${(serverCpu * 100).toFixed(0)} % / ${(measured.clientCpu * 100).toFixed(0)} %`,
      (peakRss / MiB).toFixed(0),
      (loadavg()[0] ?? Number.NaN).toFixed(2),
    ].join(" | ");
  } finally {
    clearInterval(rssSampler);
    await gateway?.close();
    await bench.close();
  }
}

if (!process.env.BENCH_CLIENT_SETTINGS) {
  const base = {
    seconds: Number(process.env.BENCH_SECONDS ?? 5),
    rate: Number(process.env.BENCH_RATE ?? 1000),
    connections: Number(process.env.BENCH_CONNECTIONS ?? 10),
  };
  const fanouts = (process.env.BENCH_SUBSCRIBERS ?? "100").split(",").map(Number);
  const backends = (process.env.BENCH_BACKENDS ?? "memory,redis").split(",") as Backend[];
  const paths = (process.env.BENCH_SUBSCRIBE_PATHS ?? "encoded").split(",") as SubscribePath[];
  const redis = backends.includes("redis") ? await benchRedis() : undefined;
  try {
    console.log(
      `stream latency: ${base.rate} msg/s for ${base.seconds} s (first ${WARMUP_MS} ms not measured), ` +
        `${PAYLOAD_BYTES}-byte payloads, subscribers on up to ${base.connections} HTTP/2 connections, ` +
        `Connect protocol; server${viaGateway ? " behind a gateway, both" : ""} in this process, clients in a child process`,
    );
    console.log(machineLoad());
    console.log("subscribers | backend | subscribe path | p50 ms | p99 ms | max ms | deliveries measured | publish→ack p50 / p99 ms | server store→hand-off p50 / p99 ms | CPU server / clients | server RSS MiB, peak so far in this process | load (1 min)");
    console.log("--- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | ---");
    for (const subscribers of fanouts) {
      const settings = { ...base, subscribers, connections: Math.min(base.connections, subscribers) };
      for (const backend of backends) {
        for (const path of paths) console.log(`${subscribers} | ${await run(backend, path, redis?.url, settings)}`);
      }
    }
  } finally {
    await redis?.stop();
  }
} else {
  process.send?.(await measure(JSON.parse(process.env.BENCH_CLIENT_SETTINGS) as Settings));
}
