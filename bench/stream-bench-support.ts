// Shared pieces of the stream benchmarks: a StreamService on the one-port server with a fixed caller,
// clients for it, a Redis when asked for one, and percentile maths. Benchmarks, not tests:
// run with `npx tsx bench/stream-fanout.ts` and `npx tsx bench/stream-throughput.ts`.
import { cpus, loadavg } from "node:os";
import { type Client, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { StreamService } from "../gen/mentatlab/v1/stream_pb.js";
import { type RunningServer, startServer } from "../services/server/server.js";
import { type StreamConfig, streamConfigFromEnv } from "../services/stream/config.js";
import { createStreams, type StreamRuntime } from "../services/stream/index.js";
import { type RedisServer, startRedis } from "../test/harness/index.js";
import { attachPrincipal, testPrincipal } from "../test/support/in-memory.js";

export const MiB = 1024 * 1024;

export type Backend = "memory" | "redis";

/** How Subscribe is served over gRPC and binary Connect on HTTP/2: the encoded fast path, or Connect alone. */
export type SubscribePath = "encoded" | "connect";

export interface StreamBenchServer {
  readonly server: RunningServer;
  readonly runtime: StreamRuntime;
  /** A client on its own HTTP/2 connection; call again for more connections. */
  client(): Client<typeof StreamService>;
  close(): Promise<void>;
}

/** A Redis for the benchmark: REDIS_URL if set, else a private redis-server. */
export async function benchRedis(): Promise<{ url: string; stop(): Promise<void> }> {
  if (process.env.REDIS_URL) return { url: process.env.REDIS_URL, stop: async () => undefined };
  const server: RedisServer = await startRedis();
  return { url: server.url, stop: () => server.stop() };
}

export async function startStreamServer(
  backend: Backend,
  redisUrl: string | undefined,
  overrides: Partial<StreamConfig> = {},
  subscribePath: SubscribePath = "encoded",
): Promise<StreamBenchServer> {
  const config: StreamConfig = {
    ...streamConfigFromEnv({}),
    redisUrl: backend === "redis" ? redisUrl : undefined,
    redisKeyPrefix: `bench:${Date.now()}:`,
    ...overrides,
  };
  const runtime = await createStreams(config);
  const principal = testPrincipal({ user: "bench", workspace: "ws-bench" });
  const server = await startServer({
    port: 0,
    routes: (router) => router.service(StreamService, runtime.impl),
    interceptors: [attachPrincipal(principal)],
    uncompressedServices: [StreamService.typeName],
    encodedStreams: subscribePath === "encoded" ? runtime.encodedStreams : [],
    shutdownGraceMs: 1_000,
  });
  return {
    server,
    runtime,
    client: () =>
      createClient(
        StreamService,
        createConnectTransport({
          baseUrl: server.url,
          httpVersion: "2",
          // Tuned receive windows: Node's 64 KiB default is smaller than one video chunk.
          nodeOptions: { settings: { initialWindowSize: 4 * MiB } },
          readMaxBytes: 8 * MiB,
          writeMaxBytes: 8 * MiB,
        }),
      ),
    async close() {
      await server.close();
      await runtime.close();
    },
  };
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The machine's load when a benchmark starts: figures taken on a busy machine say little. */
export function machineLoad(): string {
  const [one, five] = loadavg();
  return `load average ${one?.toFixed(2)} (1 min) ${five?.toFixed(2)} (5 min) on ${cpus().length} cores`;
}
