// The embedded mesh on Bun and Deno (Connect's Fetch-API handlers behind Bun.serve / Deno.serve)
// as a ratio to the same mesh on Node (`npm start`), measured in this run over the protocols every
// runtime serves: Connect over HTTP/1.1. Unary: StorageService/GetUsage (binary Connect, auth,
// permission and protovalidate on) at a fixed concurrency. Download: one object from local disk,
// as the plain-HTTP media GET and as the server-streaming Download RPC (binary Connect). The client
// frames and counts bytes without decoding, so the figures are the servers'; each server runs in its
// own process, started with its documented command, and its CPU time per call or per MB is read
// from /proc. Usage: npx tsx bench/fetch-runtimes.ts (BENCH_MIB=64 BENCH_RUNS=3 BENCH_SECONDS=3 BENCH_CONCURRENCY=32)
import { create, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { BucketClass } from "../gen/mentatlab/v1/common_pb.js";
import { DownloadRequestSchema, GetUsageRequestSchema, StorageService } from "../gen/mentatlab/v1/storage_pb.js";
import { envelope } from "../services/server/fast-path/index.js";
import { startRuntimeTarget, type MeshRuntime, type RuntimeTarget } from "../test/interop/runtime-target.js";
import { envNumber, interleavedThroughput, median, MiB, pseudoRandomChunks } from "./storage-bench-support.js";
import { machineLoad } from "./stream-bench-support.js";

const SIZE = envNumber("BENCH_MIB", 64) * MiB;
const RUNS = envNumber("BENCH_RUNS", 3);
const SECONDS = envNumber("BENCH_SECONDS", 3);
const CONCURRENCY = envNumber("BENCH_CONCURRENCY", 32);
/** The largest chunk UploadChunk takes. */
const UPLOAD_CHUNK = 4 * MiB;
const runtimes: readonly MeshRuntime[] = ["node", "bun", "deno"];
const serverEnv = {
  STORAGE_SWEEP_INTERVAL_MS: "0",
  STORAGE_USER_QUOTA_BYTES: String(64 * 1024 * MiB),
  STORAGE_WORKSPACE_QUOTA_BYTES: String(64 * 1024 * MiB),
  STORAGE_MAX_OTHER_BYTES: String(8 * 1024 * MiB),
};

/** A server under test and the object it serves. */
interface Contender {
  readonly target: RuntimeTarget;
  readonly refId: string;
  readonly agent: Agent;
}

/** CPU time (user + system) the process has used, in microseconds, from /proc (clock ticks of 10 ms). */
function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

/** Uploads SIZE pseudo-random bytes through the resumable upload (unary calls: every runtime serves them). */
async function uploadObject(target: RuntimeTarget): Promise<string> {
  const storage = createClient(StorageService, createConnectTransport({ baseUrl: target.url, httpVersion: "1.1", useBinaryFormat: true }));
  const asAdmin = { headers: { authorization: target.authorization } };
  const header = { filename: "bench.bin", mimeType: "application/octet-stream", sizeBytes: BigInt(SIZE), bucketClass: BucketClass.TEMP };
  const { uploadId } = await storage.createUpload({ header }, asAdmin);
  const hash = createHash("sha256");
  let offset = 0n;
  for await (const chunk of pseudoRandomChunks(SIZE, UPLOAD_CHUNK)) {
    hash.update(chunk);
    offset = (await storage.uploadChunk({ uploadId, offset, data: chunk }, asAdmin)).committedOffset;
  }
  const { ref } = await storage.completeUpload({ uploadId, sha256: hash.digest("hex") }, asAdmin);
  if (!ref) throw new Error(`${target.runtime}: CompleteUpload returned no MediaRef`);
  return ref.id;
}

/** One HTTP/1.1 exchange whose answer is counted, not decoded; rejects unless the status is 200. */
function exchange(contender: Contender, options: { method: string; path: string; headers: Record<string, string>; body?: Uint8Array }) {
  return new Promise<{ bytes: number; last: Buffer | undefined }>((resolve, reject) => {
    const url = new URL(options.path, contender.target.url);
    const call = request(url, { method: options.method, headers: options.headers, agent: contender.agent }, (response) => {
      let bytes = 0;
      let last: Buffer | undefined;
      response.on("data", (chunk: Buffer) => {
        bytes += chunk.length;
        last = chunk;
      });
      response.once("end", () =>
        response.statusCode === 200
          ? resolve({ bytes, last })
          : reject(new Error(`${contender.target.runtime}: ${options.path} answered ${response.statusCode}`)),
      );
      response.once("error", reject);
    });
    call.once("error", reject);
    call.end(options.body);
  });
}

const usageRequest = toBinary(GetUsageRequestSchema, create(GetUsageRequestSchema));

/** Unary calls per second `contender` sustains with CONCURRENCY calls in flight for SECONDS, and how many it made. */
async function unaryRate(contender: Contender): Promise<{ perSecond: number; calls: number }> {
  const headers = {
    "content-type": "application/proto",
    "connect-protocol-version": "1",
    authorization: contender.target.authorization,
    "content-length": String(usageRequest.byteLength),
  };
  const path = `/${StorageService.typeName}/${StorageService.method.getUsage.name}`;
  const deadline = performance.now() + SECONDS * 1000;
  let calls = 0;
  const loop = async () => {
    while (performance.now() < deadline) {
      const { bytes } = await exchange(contender, { method: "POST", path, headers, body: usageRequest });
      if (bytes === 0) throw new Error(`${contender.target.runtime}: GetUsage answered an empty message`);
      calls++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, loop));
  return { perSecond: calls / ((performance.now() - started) / 1000), calls };
}

/** GET /media/{workspace}/{ref}: the whole object over the plain-HTTP route. */
async function mediaDownload(contender: Contender): Promise<void> {
  const { target, refId } = contender;
  const { bytes } = await exchange(contender, { method: "GET", path: `/media/${target.workspace}/${refId}`, headers: { authorization: target.authorization } });
  if (bytes !== SIZE) throw new Error(`${target.runtime}: the media route sent ${bytes} of ${SIZE} bytes`);
}

/** The Download RPC as binary Connect streaming: enveloped chunks, then an end-of-stream message that must carry no error. */
async function rpcDownload(contender: Contender): Promise<void> {
  const { target, refId } = contender;
  const body = envelope(toBinary(DownloadRequestSchema, create(DownloadRequestSchema, { refId })));
  const headers = { "content-type": "application/connect+proto", "connect-protocol-version": "1", authorization: target.authorization };
  const { bytes, last } = await exchange(contender, {
    method: "POST",
    path: `/${StorageService.typeName}/${StorageService.method.download.name}`,
    headers,
    body,
  });
  const end = last?.toString("latin1") ?? "";
  if (bytes < SIZE || end.includes('"error"')) throw new Error(`${target.runtime}: Download sent ${bytes} bytes, ending ${JSON.stringify(end.slice(-200))}`);
}

/** Each contender's median `measure` over RUNS interleaved rounds, and its server CPU per unit of work. */
async function interleaved(contenders: readonly Contender[], measure: (contender: Contender) => Promise<{ perSecond: number; work: number }>) {
  const rates: number[][] = contenders.map(() => []);
  const cpu: number[][] = contenders.map(() => []);
  for (let run = 0; run < RUNS; run++) {
    for (const [index, contender] of contenders.entries()) {
      const before = cpuMicros(contender.target.pid);
      const { perSecond, work } = await measure(contender);
      cpu[index]!.push((cpuMicros(contender.target.pid) - before) / work);
      rates[index]!.push(perSecond);
    }
  }
  return contenders.map((_, index) => ({ rate: median(rates[index]!), cpu: median(cpu[index]!) }));
}

async function main(): Promise<void> {
  const targets: RuntimeTarget[] = [];
  const contenders: Contender[] = [];
  try {
    for (const runtime of runtimes) {
      const target = await startRuntimeTarget(runtime, { env: serverEnv });
      targets.push(target);
      contenders.push({ target, refId: await uploadObject(target), agent: new Agent({ keepAlive: true, maxSockets: CONCURRENCY }) });
    }
    for (const contender of contenders) await unaryRate(contender);
    const unary = await interleaved(contenders, async (contender) => {
      const { perSecond, calls } = await unaryRate(contender);
      return { perSecond, work: calls };
    });
    const megabytes = SIZE / 1e6;
    const download = async (fetchObject: (contender: Contender) => Promise<void>) => {
      for (const contender of contenders) await fetchObject(contender);
      const rates = await interleavedThroughput(
        RUNS,
        SIZE,
        contenders.map((contender) => () => fetchObject(contender)),
      );
      const cpu = await interleaved(contenders, async (contender) => {
        await fetchObject(contender);
        return { perSecond: 0, work: megabytes };
      });
      return rates.map((rate, index) => ({ rate, cpu: cpu[index]!.cpu }));
    };
    const media = await download(mediaDownload);
    const rpc = await download(rpcDownload);

    console.log(
      `embedded mesh per runtime, Connect over HTTP/1.1, median of ${RUNS} interleaved runs (${machineLoad()}); unary: GetUsage, concurrency ${CONCURRENCY}, ${SECONDS} s; download: ${SIZE / MiB} MiB from disk`,
    );
    const [nodeUnary, nodeMedia, nodeRpc] = [unary[0]!, media[0]!, rpc[0]!];
    for (const [index, contender] of contenders.entries()) {
      const ratio = (value: number, baseline: number) => (index === 0 ? "baseline" : `${(value / baseline).toFixed(2)}×`);
      console.log(`  ${contender.target.runtime}:`);
      console.log(
        `    unary        ${unary[index]!.rate.toFixed(0)} calls/s (${ratio(unary[index]!.rate, nodeUnary.rate)}), ${unary[index]!.cpu.toFixed(0)} µs server CPU per call`,
      );
      console.log(
        `    media GET    ${media[index]!.rate.toFixed(0)} MB/s (${ratio(media[index]!.rate, nodeMedia.rate)}), ${(media[index]!.cpu / 1000).toFixed(2)} ms server CPU per MB`,
      );
      console.log(
        `    Download RPC ${rpc[index]!.rate.toFixed(0)} MB/s (${ratio(rpc[index]!.rate, nodeRpc.rate)}), ${(rpc[index]!.cpu / 1000).toFixed(2)} ms server CPU per MB`,
      );
    }
  } finally {
    for (const contender of contenders) contender.agent.destroy();
    for (const target of targets) await target.stop();
  }
}

await main();
