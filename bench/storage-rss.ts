// Peak RSS growth of the storage server process while a 1 GiB object goes up through the
// StorageService and comes back down over gRPC. The server runs in a child process that samples its own
// RSS; the client here generates and checks the bytes chunk by chunk, so no side ever holds the object.
// Growth must stay under 100 MiB. Usage: npx tsx bench/storage-rss.ts  (BENCH_MIB=1024, BENCH_BACKEND=file|s3)
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { create } from "@bufbuild/protobuf";
import { UploadHeaderSchema, UploadRequestSchema } from "../gen/mentatlab/v1/storage_pb.js";
import { type S3Server, startS3 } from "../test/harness/index.js";
import { envNumber, MiB, pseudoRandomChunks, startStorageServer, storageClient } from "./storage-bench-support.js";

const SIZE = envNumber("BENCH_MIB", 1024) * MiB;
const LIMIT = 100 * MiB;
const backend = process.env.BENCH_BACKEND ?? "file";

interface Peak {
  readonly baseline: number;
  readonly peak: number;
}

/** Child process: the server. Commands on stdin: `mark` (settle and take a baseline), `peak` (report). */
async function serve(): Promise<void> {
  let s3: S3Server | undefined;
  if (backend === "s3") s3 = await startS3();
  const storage = await startStorageServer(
    s3 ? { S3_ENDPOINT: s3.endpoint, S3_BUCKET: s3.bucket, AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey } : {},
  );
  let baseline = process.memoryUsage().rss;
  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  process.stdout.write(`${JSON.stringify({ url: storage.server.url })}\n`);
  for await (const command of createInterface({ input: process.stdin })) {
    if (command === "mark") {
      await new Promise((r) => setTimeout(r, 200));
      baseline = process.memoryUsage().rss;
      peak = baseline;
      process.stdout.write("{}\n");
    } else if (command === "peak") {
      const report: Peak = { baseline, peak: Math.max(peak, process.memoryUsage().rss) };
      process.stdout.write(`${JSON.stringify(report)}\n`);
    }
  }
  clearInterval(sampler);
  await storage.close();
  await s3?.stop();
}

/** Parent process: the client, and the verdict. */
async function measure(): Promise<void> {
  const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), "serve"], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const ask = async (command?: string): Promise<unknown> => {
    if (command) child.stdin!.write(`${command}\n`);
    for (;;) {
      const next = await lines.next();
      if (next.done) throw new Error("the server process ended early");
      // The server's own start-up notices share stdout with the answers, which are JSON objects.
      if (next.value.startsWith("{")) return JSON.parse(next.value);
      process.stderr.write(`${next.value}\n`);
    }
  };
  const { url } = (await ask()) as { url: string };
  const client = storageClient(url);

  async function* requests(size: number) {
    yield create(UploadRequestSchema, { part: { case: "header", value: create(UploadHeaderSchema, { sizeBytes: BigInt(size) }) } });
    for await (const chunk of pseudoRandomChunks(size, MiB)) yield create(UploadRequestSchema, { part: { case: "chunk", value: chunk } });
  }

  async function roundTrip(size: number): Promise<{ up: Peak; down: Peak; upSeconds: number; downSeconds: number }> {
    const expected = createHash("sha256");
    for await (const chunk of pseudoRandomChunks(size, MiB)) expected.update(chunk);
    await ask("mark");
    const t0 = performance.now();
    const { ref } = await client.upload(requests(size));
    const t1 = performance.now();
    const up = (await ask("peak")) as Peak;
    await ask("mark");
    const got = createHash("sha256");
    const t2 = performance.now();
    for await (const msg of client.download({ refId: ref!.id })) {
      if (msg.part.case === "chunk") got.update(msg.part.value.data);
    }
    const t3 = performance.now();
    const down = (await ask("peak")) as Peak;
    const digest = got.digest("hex");
    if (digest !== ref!.sha256 || digest !== expected.digest("hex")) throw new Error("bytes changed on the round trip");
    await client.delete({ refId: ref!.id });
    return { up, down, upSeconds: (t1 - t0) / 1000, downSeconds: (t3 - t2) / 1000 };
  }

  // Warm up code paths, pools and the heap with a mid-sized object; what must stay flat is the growth as objects get large.
  await roundTrip(64 * MiB);
  const { up, down, upSeconds, downSeconds } = await roundTrip(SIZE);
  const upGrowth = up.peak - up.baseline;
  const downGrowth = down.peak - down.baseline;
  const growth = Math.max(upGrowth, downGrowth);
  console.log(`${SIZE / MiB} MiB up and down through StorageService (${backend} backend), server RSS measured in its own process`);
  console.log(`  upload ${(SIZE / 1e6 / upSeconds).toFixed(0)} MB/s, download ${(SIZE / 1e6 / downSeconds).toFixed(0)} MB/s`);
  console.log(`  upload: RSS ${(up.baseline / MiB).toFixed(0)} → peak ${(up.peak / MiB).toFixed(0)} MiB (growth ${(upGrowth / MiB).toFixed(1)} MiB)`);
  console.log(`  download: RSS ${(down.baseline / MiB).toFixed(0)} → peak ${(down.peak / MiB).toFixed(0)} MiB (growth ${(downGrowth / MiB).toFixed(1)} MiB)`);
  console.log(`  ratio peak growth / 100 MiB limit: ${(growth / LIMIT).toFixed(2)}`);
  child.stdin!.end();
  await once(child, "exit");
  if (growth >= LIMIT) {
    console.error("FAIL: server RSS grew by 100 MiB or more");
    process.exitCode = 1;
  }
}

if (process.argv[2] === "serve") await serve();
else await measure();
