// Peak RSS growth of the process while a 1 GiB object goes up through the StorageService and comes
// back down (gRPC, client and server in this process). The object is generated and checked chunk by
// chunk, so any growth is the service's. Must stay under 100 MiB.
// Usage: npx tsx bench/storage-rss.ts  (BENCH_MIB=1024, BENCH_BACKEND=file|s3)
import { createHash } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { UploadHeaderSchema, UploadRequestSchema } from "../gen/mentatlab/v1/storage_pb.js";
import { type S3Server, startS3 } from "../test/harness/index.js";
import { envNumber, MiB, pseudoRandomChunks, startStorageServer } from "./storage-bench-support.js";

const SIZE = envNumber("BENCH_MIB", 1024) * MiB;
const LIMIT = 100 * MiB;
const backend = process.env.BENCH_BACKEND ?? "file";

let s3: S3Server | undefined;
if (backend === "s3") s3 = await startS3();
const storage = await startStorageServer(
  s3
    ? {
        S3_ENDPOINT: s3.endpoint,
        S3_BUCKET: s3.bucket,
        AWS_ACCESS_KEY_ID: s3.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      }
    : {},
);

async function* requests(size: number) {
  yield create(UploadRequestSchema, { part: { case: "header", value: create(UploadHeaderSchema, { sizeBytes: BigInt(size) }) } });
  for await (const chunk of pseudoRandomChunks(size, MiB)) yield create(UploadRequestSchema, { part: { case: "chunk", value: chunk } });
}

/** Peak RSS seen by the sampler since the last `phase()` call. */
let phasePeak = 0;
function phase(): number {
  const seen = phasePeak;
  phasePeak = process.memoryUsage().rss;
  return seen;
}

async function roundTrip(size: number): Promise<{ upSeconds: number; downSeconds: number; upPeak: number; downPeak: number }> {
  const expected = createHash("sha256");
  for await (const chunk of pseudoRandomChunks(size, MiB)) expected.update(chunk);
  phase();
  const t0 = performance.now();
  const { ref } = await storage.client.upload(requests(size));
  const t1 = performance.now();
  const upPeak = phase();
  const got = createHash("sha256");
  for await (const msg of storage.client.download({ refId: ref!.id })) {
    if (msg.part.case === "chunk") got.update(msg.part.value.data);
  }
  const t2 = performance.now();
  const downPeak = phase();
  const digest = got.digest("hex");
  if (digest !== ref!.sha256 || digest !== expected.digest("hex")) throw new Error("bytes changed on the round trip");
  await storage.client.delete({ refId: ref!.id });
  return { upSeconds: (t1 - t0) / 1000, downSeconds: (t2 - t1) / 1000, upPeak, downPeak };
}

// Warm up code paths, pools and the heap with a mid-sized object, then measure from a settled baseline:
// what must stay flat is the growth as objects get large.
await roundTrip(64 * MiB);
globalThis.gc?.();
await new Promise((r) => setTimeout(r, 200));
const baseline = process.memoryUsage().rss;
let peak = baseline;
const sampler = setInterval(() => {
  const rss = process.memoryUsage().rss;
  peak = Math.max(peak, rss);
  phasePeak = Math.max(phasePeak, rss);
}, 20);
const { upSeconds, downSeconds, upPeak, downPeak } = await roundTrip(SIZE);
clearInterval(sampler);
peak = Math.max(peak, process.memoryUsage().rss);

const growth = peak - baseline;
console.log(`${SIZE / MiB} MiB up and down through StorageService (${backend} backend)`);
console.log(`  upload ${(SIZE / 1e6 / upSeconds).toFixed(0)} MB/s, download ${(SIZE / 1e6 / downSeconds).toFixed(0)} MB/s`);
console.log(`  peak growth while uploading ${((upPeak - baseline) / MiB).toFixed(1)} MiB, while downloading ${((downPeak - baseline) / MiB).toFixed(1)} MiB`);
console.log(`  RSS baseline ${(baseline / MiB).toFixed(0)} MiB, peak ${(peak / MiB).toFixed(0)} MiB, growth ${(growth / MiB).toFixed(1)} MiB (limit 100 MiB)`);
console.log(`  ratio growth / limit: ${(growth / LIMIT).toFixed(2)}`);

await storage.close();
await s3?.stop();
if (growth >= LIMIT) {
  console.error("FAIL: RSS grew by 100 MiB or more");
  process.exitCode = 1;
}
