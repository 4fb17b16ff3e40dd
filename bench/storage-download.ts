// Download throughput through the StorageService (64 KiB chunks) over gRPC and binary Connect on h2c,
// as a ratio to a raw node:http2 stream and to a bare @grpc/grpc-js server-streaming server, all
// measured in this run on the same bytes from local disk. Every contender is read by the same lean
// HTTP/2 client (it counts bytes and checks the status, decoding nothing), so the figures are the
// servers'. The servers run in a child process and the client here, so each side has its own core as
// in a deployment. Usage: npx tsx bench/storage-download.ts (BENCH_MIB=256 BENCH_RUNS=5)
import { createReadStream, createWriteStream } from "node:fs";
import { once } from "node:events";
import { type ClientHttp2Session, createServer } from "node:http2";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { create, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { DownloadRequestSchema, StorageService, UploadHeaderSchema, UploadRequestSchema } from "../gen/mentatlab/v1/storage_pb.js";
import { startGateway, startServiceProcess } from "../services/mesh/distributed.js";
import { envelope } from "../services/server/fast-path/index.js";
import { makeTempDir, removeTempDir } from "../test/harness/index.js";
import { envNumber, interleavedThroughput, median, MiB, pseudoRandomChunks } from "./storage-bench-support.js";
import { machineLoad } from "./stream-bench-support.js";
import { serveBenchChild, startBenchChild } from "./child-process-support.js";
import { leanCall, leanSession } from "./lean-client-support.js";

const SIZE = envNumber("BENCH_MIB", 256) * MiB;
const RUNS = envNumber("BENCH_RUNS", 5);
const CHUNK = 64 * 1024;
const STREAM_WINDOW = 4 * MiB;
const CONNECTION_WINDOW = 32 * MiB;

interface Endpoints {
  /** The storage process of the distributed mesh (authentication on). */
  readonly storagePort: number;
  readonly refId: string;
  readonly rawPort: number;
  readonly grpcPort: number;
}

const API_KEY = "bench-download-key-0123456789";
const identity = (b: Buffer): Buffer => b;
const definition: grpc.ServiceDefinition = {
  download: {
    path: "/bench.Bench/Download",
    requestStream: false,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

const meshEnv = {
  MENTATLAB_API_KEYS: `${API_KEY}=bench@ws-bench:admin`,
  MENTATLAB_TOKEN_SECRET: "download-bench-token-secret-0123456789",
  MENTATLAB_PRESIGN_SECRET: "download-bench-presign-secret-0123",
  STORAGE_SWEEP_INTERVAL_MS: "0",
  STORAGE_USER_QUOTA_BYTES: String(64 * 1024 * MiB),
  STORAGE_WORKSPACE_QUOTA_BYTES: String(64 * 1024 * MiB),
  STORAGE_MAX_OTHER_BYTES: String(8 * 1024 * MiB),
  PORT: "0",
};

/**
 * Second child process: the distributed gateway in front of the storage process, in a process of its
 * own as in a deployment (sharing the first child's core would halve what it can relay).
 */
async function serveGateway(): Promise<void> {
  const storageUrl = process.env.BENCH_STORAGE_URL!;
  const dir = makeTempDir("storage-download-gateway");
  // The gateway needs every upstream's address; this benchmark calls only storage.
  const gateway = await startGateway({
    ...meshEnv,
    MENTATLAB_DATA_DIR: dir,
    MENTATLAB_STORAGE_URL: storageUrl,
    MENTATLAB_STREAM_URL: storageUrl,
    MENTATLAB_ORCHESTRATOR_URL: storageUrl,
  });
  await serveBenchChild({ gatewayPort: gateway.server.port });
  await gateway.close();
  removeTempDir(dir);
}

/** Child process: the servers over the same bytes; prints their endpoints, exits when stdin closes. */
async function serve(): Promise<void> {
  const dir = makeTempDir("storage-download-bench");
  const file = join(dir, "object.bin");
  await pipeline(Readable.from(pseudoRandomChunks(SIZE, MiB)), createWriteStream(file));

  const storage = await startServiceProcess("storage", { ...meshEnv, MENTATLAB_DATA_DIR: join(dir, "storage") });
  const client = createClient(StorageService, createGrpcTransport({ baseUrl: storage.url }));
  async function* uploadRequests() {
    yield create(UploadRequestSchema, { part: { case: "header", value: create(UploadHeaderSchema, { sizeBytes: BigInt(SIZE) }) } });
    for await (const chunk of pseudoRandomChunks(SIZE, MiB)) yield create(UploadRequestSchema, { part: { case: "chunk", value: chunk } });
  }
  const { ref } = await client.upload(uploadRequests(), { headers: { authorization: `Bearer ${API_KEY}` } });

  const h2 = createServer({ settings: { initialWindowSize: STREAM_WINDOW } }, (_req, res) => {
    createReadStream(file, { highWaterMark: CHUNK }).pipe(res);
  });
  h2.on("session", (s) => s.setLocalWindowSize(CONNECTION_WINDOW));
  h2.listen(0, "127.0.0.1");
  await once(h2, "listening");

  const grpcServer = new grpc.Server();
  grpcServer.addService(definition, {
    download: async (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      for await (const chunk of createReadStream(file, { highWaterMark: CHUNK })) {
        if (!call.write(chunk)) await once(call, "drain");
      }
      call.end();
    },
  });
  const grpcPort = await new Promise<number>((resolve, reject) =>
    grpcServer.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
  );
  const endpoints: Endpoints = {
    storagePort: storage.server.port,
    refId: ref!.id,
    rawPort: (h2.address() as AddressInfo).port,
    grpcPort,
  };
  await serveBenchChild(endpoints);
  grpcServer.forceShutdown();
  h2.close();
  await storage.close();
  removeTempDir(dir);
}

/** Parent process: the client, timing each contender. */
async function measure(): Promise<void> {
  const child = await startBenchChild<Endpoints>(fileURLToPath(import.meta.url));
  const { endpoints } = child;
  const gatewayEnv = { ...process.env, BENCH_STORAGE_URL: `http://127.0.0.1:${endpoints.storagePort}` };
  const gatewayChild = await startBenchChild<{ gatewayPort: number }>(fileURLToPath(import.meta.url), gatewayEnv, "serve-gateway");
  const { gatewayPort } = gatewayChild.endpoints;
  const downloadPath = `/${StorageService.typeName}/${StorageService.method.download.name}`;
  const authorization = `Bearer ${API_KEY}`;
  const request = envelope(toBinary(DownloadRequestSchema, create(DownloadRequestSchema, { refId: endpoints.refId, chunkBytes: CHUNK })));

  const sessions = await Promise.all([endpoints.storagePort, endpoints.storagePort, gatewayPort, endpoints.rawPort, endpoints.grpcPort].map(leanSession));
  const [grpcSession, connectSession, gatewaySession, rawSession, bareSession] = sessions as [
    ClientHttp2Session,
    ClientHttp2Session,
    ClientHttp2Session,
    ClientHttp2Session,
    ClientHttp2Session,
  ];
  const atLeastSize =
    (who: string) =>
    ({ received }: { received: number }) => {
      if (received < SIZE) throw new Error(`${who} sent ${received} of ${SIZE} bytes`);
    };
  const contenders = [
    async () =>
      atLeastSize("storage over gRPC")(await leanCall(grpcSession, { path: downloadPath, contentType: "application/grpc", authorization, body: request })),
    async () =>
      atLeastSize("storage over Connect")(
        await leanCall(connectSession, { path: downloadPath, contentType: "application/connect+proto", authorization, body: request }),
      ),
    async () =>
      atLeastSize("the gateway")(await leanCall(gatewaySession, { path: downloadPath, contentType: "application/grpc", authorization, body: request })),
    async () => atLeastSize("raw http2")(await leanCall(rawSession, { path: "/" })),
    async () =>
      atLeastSize("grpc-js")(
        await leanCall(bareSession, { path: "/bench.Bench/Download", contentType: "application/grpc", body: envelope(new Uint8Array(0)) }),
      ),
  ];

  // One warm-up each, then RUNS interleaved timed runs each; the median is reported.
  for (const contender of contenders) await contender();
  // Server CPU per megabyte, beside the rates: it holds when the machine is busy, wall-clock rates do not.
  const cpuPerMB: number[][] = contenders.map(() => []);
  const serverCpuMicros = async () => (await child.cpuMicros()) + (await gatewayChild.cpuMicros());
  const timed = contenders.map((contender, index) => async () => {
    const before = await serverCpuMicros();
    await contender();
    cpuPerMB[index]!.push(((await serverCpuMicros()) - before) / 1000 / (SIZE / 1e6));
  });
  const [grpcRate, connectRate, gatewayRate, rawRate, bareRate] = (await interleavedThroughput(RUNS, SIZE, timed)) as [number, number, number, number, number];
  const [grpcCpu, connectCpu, gatewayCpu, rawCpu, bareCpu] = cpuPerMB.map(median) as [number, number, number, number, number];

  console.log(
    `download of ${SIZE / MiB} MiB from local disk, 64 KiB chunks, lean HTTP/2 client in another process, median of ${RUNS} interleaved runs (${machineLoad()})`,
  );
  const row = (label: string, rate: number, cpu: number) =>
    console.log(`  ${label.padEnd(40)} ${rate.toFixed(0).padStart(5)} MB/s  ${cpu.toFixed(2)} ms server CPU per MB`);
  row("StorageService, gRPC h2c:", grpcRate, grpcCpu);
  row("StorageService, Connect binary h2c:", connectRate, connectCpu);
  row("through the distributed gateway (gRPC):", gatewayRate, gatewayCpu);
  console.log("    (the gateway runs in a process of its own; its CPU per MB counts both processes)");
  row("raw node:http2 stream (tuned windows):", rawRate, rawCpu);
  row("bare grpc-js server streaming:", bareRate, bareCpu);
  console.log(`  ratio gRPC / grpc-js:      ${(grpcRate / bareRate).toFixed(2)}`);
  console.log(`  ratio gRPC / raw http2:    ${(grpcRate / rawRate).toFixed(2)}`);
  console.log(`  ratio Connect / grpc-js:   ${(connectRate / bareRate).toFixed(2)}`);
  console.log(`  ratio gateway / direct:    ${(gatewayRate / grpcRate).toFixed(2)}`);

  for (const session of sessions) session.close();
  await gatewayChild.stop();
  await child.stop();
}

if (process.argv[2] === "serve") await serve();
else if (process.argv[2] === "serve-gateway") await serveGateway();
else await measure();
