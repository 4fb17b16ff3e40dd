// Shared pieces of the storage benchmarks: a StorageService on the one-port server with a fixed caller,
// a gRPC client for it, and timing helpers. Benchmarks, not tests: run with `npx tsx bench/storage-*.ts`.
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import type { ClientHttp2Stream, Http2Session } from "node:http2";
import { StorageService } from "../gen/mentatlab/v1/storage_pb.js";
import { makeTempDir, removeTempDir } from "../test/harness/index.js";
import { attachPrincipal, testPrincipal } from "../test/support/in-memory.js";
import { type RunningServer, startServer } from "../services/server/server.js";
import { storageConfigFromEnv } from "../services/storage/config.js";
import { createStorage, type StorageRuntime } from "../services/storage/index.js";

export const MiB = 1024 * 1024;

export interface StorageBenchServer {
  readonly server: RunningServer;
  readonly runtime: StorageRuntime;
  readonly client: Client<typeof StorageService>;
  close(): Promise<void>;
}

/** The StorageService on the one-port server, configured by `env` (file backend under a temp dir by default). */
export async function startStorageServer(env: Record<string, string> = {}): Promise<StorageBenchServer> {
  const dataDir = makeTempDir("storage-bench");
  const config = storageConfigFromEnv(
    {
      MENTATLAB_PRESIGN_SECRET: "storage-bench-secret-0123",
      STORAGE_SWEEP_INTERVAL_MS: "0",
      STORAGE_USER_QUOTA_BYTES: String(1024 * 1024 * MiB),
      STORAGE_WORKSPACE_QUOTA_BYTES: String(1024 * 1024 * MiB),
      STORAGE_MAX_OTHER_BYTES: String(8 * 1024 * MiB),
      ...env,
    },
    dataDir,
  );
  const runtime = await createStorage(config);
  const principal = testPrincipal({ user: "bench", workspace: "ws-bench" });
  const server = await startServer({
    port: 0,
    routes: (router) => router.service(StorageService, runtime.impl),
    interceptors: [attachPrincipal(principal)],
    uncompressedServices: [StorageService.typeName],
  });
  const client = storageClient(server.url);
  return {
    server,
    runtime,
    client,
    async close() {
      await server.close();
      await runtime.close();
      removeTempDir(dataDir);
    },
  };
}

/** Widens the connection-level receive window of every session it opens (Node's default is 64 KiB). */
class WideWindowSessionManager extends Http2SessionManager {
  private readonly tuned = new WeakSet<Http2Session>();

  override async request(...args: Parameters<Http2SessionManager["request"]>): Promise<ClientHttp2Stream> {
    const stream = await super.request(...args);
    if (!this.tuned.has(stream.session!)) {
      this.tuned.add(stream.session!);
      stream.session!.setLocalWindowSize(32 * MiB);
    }
    return stream;
  }
}

/** A gRPC client with the receive windows a media client should use (4 MiB per stream, 32 MiB per connection). */
export function storageClient(baseUrl: string): Client<typeof StorageService> {
  const sessionManager = new WideWindowSessionManager(baseUrl, undefined, { settings: { initialWindowSize: 4 * MiB } });
  return createClient(StorageService, createGrpcTransport({ baseUrl, sessionManager }));
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Runs each contender `runs` times, interleaved (A B C A B C ...) so that load from elsewhere on the
 * machine hits them alike, and returns each one's median throughput in MB/s (10^6 bytes) for `bytes` per run.
 */
export async function interleavedThroughput(runs: number, bytes: number, contenders: readonly (() => Promise<void>)[]): Promise<number[]> {
  const rates = contenders.map(() => [] as number[]);
  for (let i = 0; i < runs; i++) {
    for (const [index, work] of contenders.entries()) {
      const start = process.hrtime.bigint();
      await work();
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      rates[index]!.push(bytes / 1e6 / seconds);
    }
  }
  return rates.map(median);
}

/** Deterministic incompressible-looking bytes, generated chunk by chunk so no object is ever held whole. */
export async function* pseudoRandomChunks(total: number, chunkBytes: number): AsyncGenerator<Uint8Array> {
  let state = 0x12345678;
  for (let sent = 0; sent < total; sent += chunkBytes) {
    const chunk = Buffer.allocUnsafe(Math.min(chunkBytes, total - sent));
    for (let i = 0; i + 4 <= chunk.length; i += 4) {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      chunk.writeInt32LE(state | 0, i);
    }
    yield chunk;
  }
}

export function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  return raw ? Number(raw) : fallback;
}
