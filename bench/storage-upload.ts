// Upload throughput through the StorageService into S3 (fauxqs from the test harness) as a ratio to a
// direct @aws-sdk/lib-storage upload of the same bytes to the same S3 server, measured in this run.
// Usage: npx tsx bench/storage-upload.ts  (BENCH_MIB=64 BENCH_RUNS=3)
import { Readable } from "node:stream";
import { S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { create } from "@bufbuild/protobuf";
import { UploadHeaderSchema, UploadRequestSchema } from "../gen/mentatlab/v1/storage_pb.js";
import { startS3 } from "../test/harness/index.js";
import { envNumber, interleavedThroughput, MiB, pseudoRandomChunks, startStorageServer } from "./storage-bench-support.js";

// fauxqs keeps every object in memory in its own process: keep the object modest.
const SIZE = envNumber("BENCH_MIB", 64) * MiB;
const RUNS = envNumber("BENCH_RUNS", 3);
const CHUNK = MiB;

const s3 = await startS3();
const storage = await startStorageServer({
  S3_ENDPOINT: s3.endpoint,
  S3_BUCKET: s3.bucket,
  S3_REGION: s3.region,
  AWS_ACCESS_KEY_ID: s3.accessKeyId,
  AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
});
// Direct uploads go to another bucket so the two contenders never share keys.
const directBucket = await s3.createBucket(`direct-${Date.now()}`);
const direct = new S3Client({ ...s3.clientConfig, requestChecksumCalculation: "WHEN_REQUIRED" });

let run = 0;
async function viaStorage(): Promise<void> {
  // Each run's bytes differ (a run counter leads the object), so dedup never short-cuts an upload.
  const marker = Buffer.alloc(16);
  marker.writeUInt32LE(++run);
  async function* requests() {
    yield create(UploadRequestSchema, { part: { case: "header", value: create(UploadHeaderSchema, { sizeBytes: BigInt(SIZE) }) } });
    yield create(UploadRequestSchema, { part: { case: "chunk", value: marker } });
    for await (const chunk of pseudoRandomChunks(SIZE - marker.length, CHUNK)) {
      yield create(UploadRequestSchema, { part: { case: "chunk", value: chunk } });
    }
  }
  const { ref } = await storage.client.upload(requests());
  if (Number(ref?.sizeBytes) !== SIZE) throw new Error("storage stored the wrong size");
  await storage.client.delete({ refId: ref!.id });
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
console.log(`upload of ${SIZE / MiB} MiB into S3 (fauxqs), median of ${RUNS} interleaved runs`);
console.log(`  through StorageService (gRPC client stream, sniff + sha256 + limits): ${storageRate.toFixed(0)} MB/s`);
console.log(`  direct @aws-sdk/lib-storage Upload:                                  ${directRate.toFixed(0)} MB/s`);
console.log(`  ratio storage / direct: ${(storageRate / directRate).toFixed(2)}`);

direct.destroy();
await storage.close();
await s3.stop();
