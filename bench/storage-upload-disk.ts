// Upload throughput into the file backend through the StorageService (gRPC client stream, 1 MiB chunk
// messages; sniffing, limits, quota, sha256 and the write to disk included) as a ratio to a bare
// @grpc/grpc-js server that writes the same messages to disk and hashes them, both fed by the same lean
// HTTP/2 client with the servers in another process. Each run's bytes differ (a run marker leads the
// object), so deduplication never short-cuts one. Usage: npx tsx bench/storage-upload-disk.ts
// (BENCH_MIB=256 BENCH_RUNS=5)
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { DeleteRequestSchema, StorageService, UploadRequestSchema, UploadResponseSchema } from "../gen/mentatlab/v1/storage_pb.js";
import { startServiceProcess } from "../services/mesh/distributed.js";
import { envelope } from "../services/server/fast-path/index.js";
import { makeTempDir, removeTempDir } from "../test/harness/index.js";
import { serveBenchChild, startBenchChild } from "./child-process-support.js";
import { leanCall, leanSession } from "./lean-client-support.js";
import { envNumber, interleavedThroughput, median, MiB, pseudoRandomChunks } from "./storage-bench-support.js";
import { machineLoad } from "./stream-bench-support.js";

const SIZE = envNumber("BENCH_MIB", 256) * MiB;
const RUNS = envNumber("BENCH_RUNS", 5);
const CHUNK = MiB;
const API_KEY = "bench-upload-key-0123456789";
const UPLOAD_PATH = `/${StorageService.typeName}/${StorageService.method.upload.name}`;
const BARE_PATH = "/bench.Bench/Upload";

interface Endpoints {
  readonly storagePort: number;
  readonly barePort: number;
}

const identity = (b: Buffer): Buffer => b;

/** Child process: the storage process and the bare server; prints their ports, exits when stdin closes. */
async function serve(): Promise<void> {
  const dir = makeTempDir("storage-upload-disk-bench");
  const storage = await startServiceProcess("storage", {
    MENTATLAB_API_KEYS: `${API_KEY}=bench@ws-bench:admin`,
    MENTATLAB_TOKEN_SECRET: "upload-bench-token-secret-0123456789",
    MENTATLAB_PRESIGN_SECRET: "upload-bench-presign-secret-0123",
    MENTATLAB_DATA_DIR: join(dir, "storage"),
    STORAGE_SWEEP_INTERVAL_MS: "0",
    STORAGE_USER_QUOTA_BYTES: String(64 * 1024 * MiB),
    STORAGE_WORKSPACE_QUOTA_BYTES: String(64 * 1024 * MiB),
    STORAGE_MAX_OTHER_BYTES: String(8 * 1024 * MiB),
    PORT: "0",
  });
  let upload = 0;
  const bare = new grpc.Server({ "grpc.max_receive_message_length": 8 * MiB });
  bare.addService(
    {
      upload: {
        path: BARE_PATH,
        requestStream: true,
        responseStream: false,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
      },
    },
    {
      upload: (call: grpc.ServerReadableStream<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        const file = join(dir, `bare-${++upload}.bin`);
        const out = createWriteStream(file);
        const hash = createHash("sha256");
        call.on("data", (message: Buffer) => {
          hash.update(message);
          if (!out.write(message)) {
            call.pause();
            out.once("drain", () => call.resume());
          }
        });
        call.on("end", () => {
          out.end(async () => {
            await rm(file);
            callback(null, Buffer.from(hash.digest()));
          });
        });
      },
    },
  );
  const barePort = await new Promise<number>((resolve, reject) =>
    bare.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
  );
  await serveBenchChild({ storagePort: storage.server.port, barePort } satisfies Endpoints);
  bare.forceShutdown();
  await storage.close();
  removeTempDir(dir);
}

/** Parent process: the lean client sending the same envelopes to both. */
async function measure(): Promise<void> {
  const child = await startBenchChild<Endpoints>(fileURLToPath(import.meta.url));
  const meshSession = await leanSession(child.endpoints.storagePort);
  const bareSession = await leanSession(child.endpoints.barePort);
  const authorization = `Bearer ${API_KEY}`;
  // One random chunk, framed once and sent over and over: the client costs next to nothing.
  const { value: chunk } = await pseudoRandomChunks(CHUNK, CHUNK).next();
  const chunkEnvelope = envelope(toBinary(UploadRequestSchema, create(UploadRequestSchema, { part: { case: "chunk", value: chunk as Uint8Array } })));
  let run = 0;
  async function* requests(): AsyncGenerator<Uint8Array> {
    const marker = Buffer.alloc(16);
    marker.writeUInt32LE(++run);
    yield envelope(
      toBinary(UploadRequestSchema, create(UploadRequestSchema, { part: { case: "header", value: { sizeBytes: BigInt(SIZE + marker.byteLength) } } })),
    );
    yield envelope(toBinary(UploadRequestSchema, create(UploadRequestSchema, { part: { case: "chunk", value: marker } })));
    for (let sent = 0; sent < SIZE; sent += CHUNK) yield chunkEnvelope;
  }
  async function viaStorage(): Promise<void> {
    const { body } = await leanCall(meshSession, { path: UPLOAD_PATH, contentType: "application/grpc", authorization, body: requests(), keepBody: true });
    const { ref } = fromBinary(UploadResponseSchema, body!.subarray(5));
    if (Number(ref?.sizeBytes) !== SIZE + 16) throw new Error(`storage stored ${ref?.sizeBytes} bytes`);
    const deletion = envelope(toBinary(DeleteRequestSchema, create(DeleteRequestSchema, { refId: ref!.id })));
    await leanCall(meshSession, {
      path: `/${StorageService.typeName}/${StorageService.method.delete.name}`,
      contentType: "application/grpc",
      authorization,
      body: deletion,
    });
  }
  async function viaBare(): Promise<void> {
    await leanCall(bareSession, { path: BARE_PATH, contentType: "application/grpc", body: requests() });
  }

  await viaStorage();
  await viaBare();
  const cpuPerMB: number[][] = [[], []];
  const timed = [viaStorage, viaBare].map((contender, index) => async () => {
    const before = await child.cpuMicros();
    await contender();
    cpuPerMB[index]!.push(((await child.cpuMicros()) - before) / 1000 / (SIZE / 1e6));
  });
  const [storageRate, bareRate] = (await interleavedThroughput(RUNS, SIZE, timed)) as [number, number];
  const [storageCpu, bareCpu] = cpuPerMB.map(median) as [number, number];
  console.log(
    `upload of ${SIZE / MiB} MiB to local disk, 1 MiB chunk messages, lean HTTP/2 client in another process, median of ${RUNS} interleaved runs (${machineLoad()})`,
  );
  console.log(
    `  StorageService, gRPC client stream (sniff + limits + quota + sha256 + disk): ${storageRate.toFixed(0)} MB/s  ${storageCpu.toFixed(2)} ms server CPU per MB`,
  );
  console.log(
    `  bare grpc-js server (sha256 + disk):                                        ${bareRate.toFixed(0)} MB/s  ${bareCpu.toFixed(2)} ms server CPU per MB`,
  );
  console.log(`  ratio storage / grpc-js: ${(storageRate / bareRate).toFixed(2)}`);
  meshSession.close();
  bareSession.close();
  await child.stop();
}

if (process.argv[2] === "serve") await serve();
else await measure();
