// Publish → subscriber latency of the mesh as deployed: a stream process (memory or Redis), alone or
// behind the distributed gateway, each in a process of its own, with lean subscribers spread over
// several processes so that the clients are not what is measured (their CPU is reported).
// `npx tsx bench/stream-fanout.ts`; BENCH_SECONDS (default 5), BENCH_RATE (msg/s, default 1000),
// BENCH_SUBSCRIBERS (default 100), BENCH_CLIENT_PROCESSES (default 4), BENCH_CONNECTIONS (HTTP/2
// connections per client process, default 4), BENCH_BACKENDS (default "memory,redis"), BENCH_ROUTES
// (default "direct,gateway"), BENCH_BUSY_AGENTS (CPU-bound agent processes beside the mesh for a last
// run, default 2; 0 skips it), REDIS_URL (default: a private redis-server).
// Subscribers read Connect streaming responses on raw node:http2 streams, split envelopes and read the
// send time the producer wrote into each payload; nothing else is decoded. The producer (in this
// process) publishes on one Publish call through the same route and times each acknowledgement.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { type ClientHttp2Session, connect } from "node:http2";
import { connect as netConnect } from "node:net";
import { getPriority, setPriority, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { create, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { PinType } from "../gen/mentatlab/v1/common_pb.js";
import { type PublishRequestSchema, StreamService, SubscribeRequestSchema } from "../gen/mentatlab/v1/stream_pb.js";
import { ResourceProfile } from "../gen/mentatlab/v1/registry_pb.js";
import { startGateway, startServiceProcess } from "../services/mesh/distributed.js";
import { detectCpuCaps } from "../services/orchestrator/cpu-caps.js";
import { profileResources } from "../services/registry/resources.js";
import { type BenchChild, serveBenchChild, startBenchChild } from "./child-process-support.js";
import { type Backend, benchRedis, machineLoad, MiB, percentile, sleep } from "./stream-bench-support.js";

type Route = "direct" | "gateway";

const KEY = "bench-fanout-key-0123456789";
const PAYLOAD_BYTES = 256;
const WARMUP_MS = 500;
// Written before the send time in every payload, so a subscriber finds it without decoding the event.
const MARKER = Buffer.from("sent@");
const script = fileURLToPath(import.meta.url);
const wallClock = (): number => performance.timeOrigin + performance.now();

/** What a subscriber process reports: each delivery's send time and its latency, in ms. */
interface Received {
  readonly sentAt: number[];
  readonly latency: number[];
}

function meshEnv(dataDir: string): Record<string, string> {
  return {
    MENTATLAB_DATA_DIR: dataDir,
    MENTATLAB_API_KEYS: `${KEY}=bench@ws-bench:admin`,
    MENTATLAB_TOKEN_SECRET: "bench-fanout-token-secret-0123456789",
    MENTATLAB_PRESIGN_SECRET: "bench-fanout-presign-secret-0123456789",
    MENTATLAB_HOST: "127.0.0.1",
    MENTATLAB_SHUTDOWN_GRACE_MS: "500",
    MENTATLAB_METRICS: "off",
    PORT: "0",
  };
}

/** In a child: the stream process or the gateway, as `mentatlab serve` starts them. */
async function serveMeshPart(role: "stream" | "gateway"): Promise<void> {
  const env = { ...process.env } as Record<string, string>;
  const part = role === "stream" ? await startServiceProcess("stream", env) : await startGateway(env);
  await serveBenchChild({ url: part.url });
  await part.close();
}

function session(url: string): ClientHttp2Session {
  const { hostname, port } = new URL(url);
  const opened = connect(url, {
    settings: { initialWindowSize: 4 * MiB },
    // Nagle's algorithm would hold back small frames waiting for ACKs.
    createConnection: () => netConnect({ host: hostname, port: Number(port), noDelay: true }),
  });
  opened.once("connect", () => opened.setLocalWindowSize(32 * MiB));
  return opened;
}

/**
 * One lean subscriber: a Connect streaming Subscribe on a raw HTTP/2 stream. Resolves `started` at
 * stream_start (the first message), records each payload's latency, and resolves once the stream ends.
 */
function leanSubscriber(http2: ClientHttp2Session, streamId: string, into: Received): { started: Promise<void>; ended: Promise<void> } {
  const request = toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, { streamId }));
  const envelope = Buffer.alloc(5 + request.byteLength);
  envelope.writeUInt32BE(request.byteLength, 1);
  envelope.set(request, 5);
  const stream = http2.request({
    ":method": "POST",
    ":path": `/${StreamService.typeName}/${StreamService.method.subscribe.name}`,
    "content-type": "application/connect+proto",
    authorization: `Bearer ${KEY}`,
  });
  stream.end(envelope);
  let markStarted: () => void = () => undefined;
  const started = new Promise<void>((resolve) => (markStarted = resolve));
  const ended = new Promise<void>((resolve, reject) => {
    let pending: Buffer = Buffer.alloc(0);
    stream.on("data", (chunk: Buffer) => {
      const now = wallClock();
      pending = pending.byteLength === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.byteLength >= 5) {
        const length = pending.readUInt32BE(1);
        if (pending.byteLength < 5 + length) break;
        const flags = pending[0] ?? 0;
        const message = pending.subarray(5, 5 + length);
        pending = pending.subarray(5 + length);
        if (flags & 2) {
          const end = JSON.parse(message.toString("utf8")) as { error?: { message?: string } };
          if (end.error) reject(new Error(`subscribe failed: ${end.error.message}`));
          continue;
        }
        markStarted();
        const at = message.indexOf(MARKER);
        if (at < 0) continue;
        const sentAt = Number(
          message
            .subarray(at + MARKER.byteLength, at + MARKER.byteLength + 20)
            .toString("latin1")
            .trimEnd(),
        );
        into.sentAt.push(sentAt);
        into.latency.push(now - sentAt);
      }
    });
    stream.once("end", resolve);
    stream.once("error", reject);
  });
  return { started, ended };
}

/** In a child: BENCH_SUBSCRIBERS_HERE subscribers on BENCH_CONNECTIONS connections, results to BENCH_RESULT_FILE. */
async function serveSubscribers(): Promise<void> {
  const url = process.env.BENCH_TARGET ?? "";
  const streamId = process.env.BENCH_STREAM_ID ?? "";
  const count = Number(process.env.BENCH_SUBSCRIBERS_HERE);
  const sessions = Array.from({ length: Number(process.env.BENCH_CONNECTIONS ?? 4) }, () => session(url));
  const received: Received = { sentAt: [], latency: [] };
  const subscribers = Array.from({ length: count }, (_, i) => leanSubscriber(sessions[i % sessions.length] as ClientHttp2Session, streamId, received));
  await Promise.all(subscribers.map((s) => s.started));
  const failures: string[] = [];
  for (const s of subscribers) s.ended.catch((err: unknown) => failures.push(String(err)));
  await serveBenchChild({ subscribed: count });
  for (const s of sessions) s.destroy();
  writeFileSync(process.env.BENCH_RESULT_FILE ?? "", JSON.stringify({ ...received, failures }));
  process.exit(0);
}

async function runCase(backend: Backend, route: Route, redisUrl: string | undefined, seconds: number, rate: number, subscribers: number): Promise<string> {
  const dataDir = mkdtempSync(join(tmpdir(), "bench-fanout-"));
  const env = {
    ...process.env,
    ...meshEnv(dataDir),
    ...(backend === "redis" && redisUrl ? { REDIS_URL: redisUrl, STREAM_REDIS_PREFIX: `bench:${Date.now()}:` } : {}),
  };
  const children: BenchChild<unknown>[] = [];
  try {
    const stream = await startBenchChild<{ url: string }>(script, { ...env, BENCH_ROLE: "stream" });
    children.push(stream);
    let target = stream.endpoints.url;
    const servers = [stream];
    if (route === "gateway") {
      const gateway = await startBenchChild<{ url: string }>(script, {
        ...env,
        BENCH_ROLE: "gateway",
        MENTATLAB_STREAM_URL: stream.endpoints.url,
        MENTATLAB_STORAGE_URL: "http://127.0.0.1:9",
        MENTATLAB_ORCHESTRATOR_URL: "http://127.0.0.1:9",
      });
      children.push(gateway);
      servers.push(gateway);
      target = gateway.endpoints.url;
    }
    const producer = createClient(StreamService, createGrpcTransport({ baseUrl: target, acceptCompression: [] }));
    const headers = { authorization: `Bearer ${KEY}` };
    const streamId = (await producer.initStream({ payloadType: PinType.TEXT, mimeType: "text/plain" }, { headers })).stream?.ref?.streamId ?? "";

    const processes = Math.max(1, Math.min(subscribers, Number(process.env.BENCH_CLIENT_PROCESSES ?? 4)));
    const resultFiles: string[] = [];
    const clients = await Promise.all(
      Array.from({ length: processes }, (_, p) => {
        const resultFile = join(dataDir, `received-${p}.json`);
        resultFiles.push(resultFile);
        const here = Math.floor(subscribers / processes) + (p < subscribers % processes ? 1 : 0);
        return startBenchChild(script, {
          ...env,
          BENCH_ROLE: "subscribers",
          BENCH_TARGET: target,
          BENCH_STREAM_ID: streamId,
          BENCH_SUBSCRIBERS_HERE: String(here),
          BENCH_RESULT_FILE: resultFile,
        });
      }),
    );
    children.push(...clients);

    const cpuOf = (of: BenchChild<unknown>[]) => Promise.all(of.map((c) => c.cpuMicros()));
    const [serverCpuBefore, clientCpuBefore] = [await cpuOf(servers), await cpuOf(clients)];
    const wallBefore = performance.now();
    const total = Math.round(seconds * rate);
    const sent = new Map<bigint, number>();
    let measureFrom = Number.POSITIVE_INFINITY;
    let measuredMessages = 0;
    async function* messages(): AsyncGenerator<MessageInitShape<typeof PublishRequestSchema>> {
      yield { part: { case: "open", value: { streamId } } };
      const start = performance.now();
      for (let i = 1; i <= total; i++) {
        const wait = start + (i * 1000) / rate - performance.now();
        if (wait > 1) await sleep(wait);
        const now = wallClock();
        if (i === 1) measureFrom = now + WARMUP_MS;
        if (now >= measureFrom) measuredMessages++;
        sent.set(BigInt(i), now);
        const payload = `${MARKER.toString()}${now.toFixed(3)}`.padEnd(PAYLOAD_BYTES, " ");
        yield { part: { case: "data", value: { data: new TextEncoder().encode(payload), clientSeq: BigInt(i) } } };
      }
    }
    const acks: number[] = [];
    for await (const response of producer.publish(messages(), { headers })) {
      if (response.event.case !== "ack") continue;
      const sentAt = sent.get(response.event.value.lastClientSeq);
      if (sentAt !== undefined && sentAt >= measureFrom) acks.push(wallClock() - sentAt);
    }
    await producer.closeStream({ streamId }, { headers });
    const wallMs = performance.now() - wallBefore;
    const [serverCpuAfter, clientCpuAfter] = [await cpuOf(servers), await cpuOf(clients)];
    // Whatever is still in flight after a second counts as not delivered.
    await sleep(1_000);
    for (const client of clients) await client.stop();

    const latencies: number[] = [];
    const failures: string[] = [];
    for (const file of resultFiles) {
      const got = JSON.parse(readFileSync(file, "utf8")) as Received & { failures: string[] };
      failures.push(...got.failures);
      for (const [i, sentAt] of got.sentAt.entries()) if (sentAt >= measureFrom) latencies.push(got.latency[i] ?? Number.NaN);
    }
    latencies.sort((a, b) => a - b);
    acks.sort((a, b) => a - b);
    const share = (before: number[], after: number[]) => after.map((a, i) => `${(((a - (before[i] ?? 0)) / 1000 / wallMs) * 100).toFixed(0)} %`).join(" + ");
    return [
      backend,
      route,
      percentile(latencies, 50).toFixed(2),
      percentile(latencies, 99).toFixed(2),
      (latencies.at(-1) ?? Number.NaN).toFixed(2),
      `${latencies.length} of ${measuredMessages * subscribers}`,
      `${percentile(acks, 50).toFixed(2)} / ${percentile(acks, 99).toFixed(2)}`,
      share(serverCpuBefore, serverCpuAfter),
      share(clientCpuBefore, clientCpuAfter),
      failures.length === 0 ? "none" : `${failures.length}: ${failures[0]}`,
    ].join(" | ");
  } finally {
    for (const child of children.reverse()) await child.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * CPU-bound agents beside the mesh, as the local executor runs them: busy processes at the niceness it
 * gives agents (ORCHESTRATOR_AGENT_NICE, default 10) and, where cgroups can be written, held to the
 * default profile's CPU share as ORCHESTRATOR_AGENT_CPU_CAPS=auto does, so the figure shows whether
 * live delivery holds while a flow keeps the cores busy.
 */
function startBusyAgents(count: number): { readonly how: string; stop(): void } {
  const nice = Number(process.env.ORCHESTRATOR_AGENT_NICE ?? 10);
  const cpuCores = profileResources[ResourceProfile.TEXT_PROCESSING].cpuCores;
  const caps = process.env.ORCHESTRATOR_AGENT_CPU_CAPS === "off" ? undefined : detectCpuCaps().caps;
  const agents = Array.from({ length: count }, (_, index) => {
    const agent = spawn(process.execPath, ["-e", "for (;;) Math.sqrt(Math.random());"], { stdio: "ignore" });
    const agentNice = Math.min(19, getPriority() + nice);
    setPriority(agent.pid!, agentNice);
    caps?.confine(`busy-${index}`, agent.pid!, { cpuCores, nice: agentNice });
    return agent;
  });
  return {
    how: `nice +${nice}, ${caps ? `each held to ${cpuCores} of a core by a cgroup` : "no CPU cap (cgroups not writable here)"}, as the local executor runs them`,
    stop() {
      for (const agent of agents) agent.kill("SIGKILL");
      // The groups can go once the kernel has reaped their processes.
      if (caps) setTimeout(() => caps.close(), 200);
    },
  };
}

const role = process.env.BENCH_ROLE;
if (role === "stream" || role === "gateway") {
  await serveMeshPart(role);
} else if (role === "subscribers") {
  await serveSubscribers();
} else {
  const seconds = Number(process.env.BENCH_SECONDS ?? 5);
  const rate = Number(process.env.BENCH_RATE ?? 1000);
  const subscribers = Number(process.env.BENCH_SUBSCRIBERS ?? 100);
  const backends = (process.env.BENCH_BACKENDS ?? "memory,redis").split(",") as Backend[];
  const routes = (process.env.BENCH_ROUTES ?? "direct,gateway").split(",") as Route[];
  const redis = backends.includes("redis") ? await benchRedis() : undefined;
  try {
    console.log(
      `stream fan-out: ${rate} msg/s for ${seconds} s (first ${WARMUP_MS} ms not measured), ${PAYLOAD_BYTES}-byte payloads, ` +
        `${subscribers} lean subscribers in ${process.env.BENCH_CLIENT_PROCESSES ?? 4} processes; stream process and gateway each in its own process`,
    );
    console.log(machineLoad());
    console.log(
      "backend | route | p50 ms | p99 ms | max ms | deliveries measured | publish→ack p50 / p99 ms | CPU stream (+ gateway) | CPU client processes | subscriber failures",
    );
    console.log("--- | --- | --- | --- | --- | --- | --- | --- | --- | ---");
    for (const backend of backends) {
      for (const route of routes) console.log(await runCase(backend, route, redis?.url, seconds, rate, subscribers));
    }
    const busyAgents = Number(process.env.BENCH_BUSY_AGENTS ?? 2);
    if (busyAgents > 0) {
      const agents = startBusyAgents(busyAgents);
      console.log(`with ${busyAgents} CPU-bound agent processes beside the mesh (${agents.how}):`);
      try {
        for (const backend of backends) console.log(await runCase(backend, "direct", redis?.url, seconds, rate, subscribers));
      } finally {
        agents.stop();
      }
    }
    console.log(machineLoad());
  } finally {
    await redis?.stop();
  }
}
