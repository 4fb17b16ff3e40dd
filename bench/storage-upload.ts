// Upload throughput through the StorageService into S3 (fauxqs from the test harness) as a ratio to a
// direct @aws-sdk/lib-storage upload of the same bytes to the same S3 server, measured in this run. The
// storage process runs in a child of its own, fed by a lean HTTP/2 client, as in a deployment.
// Usage: npx tsx bench/storage-upload.ts  (BENCH_MIB=64 BENCH_RUNS=3)
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { DeleteRequestSchema, StorageService, UploadRequestSchema, UploadResponseSchema } from "../gen/mentatlab/v1/storage_pb.js";
import { startServiceProcess } from "../services/mesh/distributed.js";
import { envelope } from "../services/server/fast-path/index.js";
import { makeTempDir, removeTempDir, startS3 } from "../test/harness/index.js";
import { serveBenchChild, startBenchChild } from "./child-process-support.js";
import { leanCall, leanSession } from "./lean-client-support.js";
import { envNumber, interleavedThroughput, MiB, pseudoRandomChunks } from "./storage-bench-support.js";
import { machineLoad } from "./stream-bench-support.js";

// fauxqs keeps every object in memory in its own process: keep the object modest.
const SIZE = envNumber("BENCH_MIB", 64) * MiB;
const RUNS = envNumber("BENCH_RUNS", 3);
const CHUNK = MiB;
const API_KEY = "bench-s3-upload-key-0123456789";

/** Child process: the storage process on the S3 server named by the parent. */
async function serve(): Promise<void> {
  const dir = makeTempDir("storage-upload-bench");
  const storage = await startServiceProcess("storage", {
    ...process.env,
    MENTATLAB_API_KEYS: `${API_KEY}=bench@ws-bench:admin`,
    MENTATLAB_TOKEN_SECRET: "s3-upload-bench-token-secret-0123456789",
    MENTATLAB_PRESIGN_SECRET: "s3-upload-bench-presign-secret-0123",
    MENTATLAB_DATA_DIR: dir,
    STORAGE_SWEEP_INTERVAL_MS: "0",
    STORAGE_USER_QUOTA_BYTES: String(1024 * 1024 * MiB),
    STORAGE_WORKSPACE_QUOTA_BYTES: String(1024 * 1024 * MiB),
    STORAGE_MAX_OTHER_BYTES: String(8 * 1024 * MiB),
    PORT: "0",
  });
  await serveBenchChild({ storagePort: storage.server.port });
  await storage.close();
  removeTempDir(dir);
}

async function measure(): Promise<void> {
  const s3 = await startS3();
  const child = await startBenchChild<{ storagePort: number }>(fileURLToPath(import.meta.url), {
    ...process.env,
    S3_ENDPOINT: s3.endpoint,
    S3_BUCKET: s3.bucket,
    S3_REGION: s3.region,
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
  });
  const session = await leanSession(child.endpoints.storagePort);
  const authorization = `Bearer ${API_KEY}`;
  // Direct uploads go to another bucket so the two contenders never share keys.
  const directBucket = await s3.createBucket(`direct-${Date.now()}`);
  const direct = new S3Client({ ...s3.clientConfig, requestChecksumCalculation: "WHEN_REQUIRED" });
  const path = (name: string) => `/${StorageService.typeName}/${name}`;

  let run = 0;
  async function* requests(): AsyncGenerator<Uint8Array> {
    // Each run's bytes differ (a run counter leads the object), so dedup never short-cuts an upload.
    const marker = Buffer.alloc(16);
    marker.writeUInt32LE(++run);
    yield envelope(toBinary(UploadRequestSchema, create(UploadRequestSchema, { part: { case: "header", value: { sizeBytes: BigInt(SIZE) } } })));
    yield envelope(toBinary(UploadRequestSchema, create(UploadRequestSchema, { part: { case: "chunk", value: marker } })));
    for await (const chunk of pseudoRandomChunks(SIZE - marker.length, CHUNK)) {
      yield envelope(toBinary(UploadRequestSchema, create(UploadRequestSchema, { part: { case: "chunk", value: chunk } })));
    }
  }
  async function viaStorage(): Promise<void> {
    const { body } = await leanCall(session, { path: path("Upload"), contentType: "application/grpc", authorization, body: requests(), keepBody: true });
    const { ref } = fromBinary(UploadResponseSchema, body!.subarray(5));
    if (Number(ref?.sizeBytes) !== SIZE) throw new Error("storage stored the wrong size");
    const deletion = envelope(toBinary(DeleteRequestSchema, create(DeleteRequestSchema, { refId: ref!.id })));
    await leanCall(session, { path: path("Delete"), contentType: "application/grpc", authorization, body: deletion });
  }
  async function viaLibStorage(): Promise<void> {
    const upload = new Upload({
      client: direct,
      params: { Bucket: directBucket, Key: `direct-${++run}`, Body: Readable.from(pseudoRandomChunks(SIZE, CHUNK)) },
      // The storage service's own S3 settings, so the comparison is of the paths, not of tuning.
      partSize: 5 * MiB,
      queueSize: 2,
    });
    await upload.done();
  }

  await viaStorage();
  await viaLibStorage();
  const [storageRate, directRate] = (await interleavedThroughput(RUNS, SIZE, [viaStorage, viaLibStorage])) as [number, number];
  console.log(`upload of ${SIZE / MiB} MiB into S3 (fauxqs), median of ${RUNS} interleaved runs (${machineLoad()})`);
  console.log(`  through StorageService (gRPC client stream, sniff + sha256 + limits): ${storageRate.toFixed(0)} MB/s`);
  console.log(`  direct @aws-sdk/lib-storage Upload:                                  ${directRate.toFixed(0)} MB/s`);
  console.log(`  ratio storage / direct: ${(storageRate / directRate).toFixed(2)}`);

  session.close();
  direct.destroy();
  await child.stop();
  await s3.stop();
}

if (process.argv[2] === "serve") await serve();
else await measure();
