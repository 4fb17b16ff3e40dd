// Download throughput through the StorageService (gRPC over h2c, 64 KiB chunks) as a ratio to a raw
// node:http2 stream and to a bare @grpc/grpc-js server-streaming server, all measured in this run on
// the same bytes from local disk. The three servers run in a child process and the clients here, so
// each side has its own core as in a deployment. Usage: npx tsx bench/storage-download.ts
// (BENCH_MIB=256 BENCH_RUNS=5)
import { spawn } from "node:child_process";
import { createReadStream, createWriteStream } from "node:fs";
import { once } from "node:events";
import { connect, createServer } from "node:http2";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { UploadHeaderSchema, UploadRequestSchema } from "../gen/mentatlab/v1/storage_pb.js";
import { makeTempDir, removeTempDir } from "../test/harness/index.js";
import { envNumber, interleavedThroughput, MiB, pseudoRandomChunks, startStorageServer, storageClient } from "./storage-bench-support.js";

const SIZE = envNumber("BENCH_MIB", 256) * MiB;
const RUNS = envNumber("BENCH_RUNS", 5);
const CHUNK = 64 * 1024;
const STREAM_WINDOW = 4 * MiB;
const CONNECTION_WINDOW = 32 * MiB;

interface Endpoints {
  readonly storageUrl: string;
  readonly refId: string;
  readonly rawPort: number;
  readonly grpcPort: number;
}

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

/** Child process: the three servers over the same bytes; prints their endpoints, exits when stdin closes. */
async function serve(): Promise<void> {
  const dir = makeTempDir("storage-download-bench");
  const file = join(dir, "object.bin");
  await pipeline(Readable.from(pseudoRandomChunks(SIZE, MiB)), createWriteStream(file));

  const storage = await startStorageServer({ STORAGE_DIR: join(dir, "storage") });
  async function* uploadRequests() {
    yield create(UploadRequestSchema, { part: { case: "header", value: create(UploadHeaderSchema, { sizeBytes: BigInt(SIZE) }) } });
    for await (const chunk of pseudoRandomChunks(SIZE, MiB)) yield create(UploadRequestSchema, { part: { case: "chunk", value: chunk } });
  }
  const { ref } = await storage.client.upload(uploadRequests());

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
    storageUrl: storage.server.url,
    refId: ref!.id,
    rawPort: (h2.address() as AddressInfo).port,
    grpcPort,
  };
  process.stdout.write(`${JSON.stringify(endpoints)}\n`);
  process.stdin.resume();
  await once(process.stdin, "end");
  grpcServer.forceShutdown();
  h2.close();
  await storage.close();
  removeTempDir(dir);
}

/** Parent process: the clients, timing each contender. */
async function measure(): Promise<void> {
  const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), "serve"], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const [line] = (await once(createInterface({ input: child.stdout! }), "line")) as [string];
  const endpoints = JSON.parse(line) as Endpoints;

  const storage = storageClient(endpoints.storageUrl);
  async function viaStorage(): Promise<void> {
    let received = 0;
    for await (const msg of storage.download({ refId: endpoints.refId, chunkBytes: CHUNK })) {
      if (msg.part.case === "chunk") received += msg.part.value.data.byteLength;
    }
    if (received !== SIZE) throw new Error(`storage sent ${received} of ${SIZE} bytes`);
  }

  const h2Session = connect(`http://127.0.0.1:${endpoints.rawPort}`, { settings: { initialWindowSize: STREAM_WINDOW } });
  await once(h2Session, "connect");
  h2Session.setLocalWindowSize(CONNECTION_WINDOW);
  async function viaRawHttp2(): Promise<void> {
    const req = h2Session.request({ ":path": "/" });
    let received = 0;
    for await (const chunk of req) received += (chunk as Buffer).byteLength;
    if (received !== SIZE) throw new Error(`raw http2 sent ${received} of ${SIZE} bytes`);
  }

  const GrpcClient = grpc.makeGenericClientConstructor(definition, "Bench");
  const grpcClient = new GrpcClient(`127.0.0.1:${endpoints.grpcPort}`, grpc.credentials.createInsecure());
  async function viaGrpcJs(): Promise<void> {
    const call = (grpcClient as unknown as { download(req: Buffer): grpc.ClientReadableStream<Buffer> }).download(Buffer.alloc(0));
    let received = 0;
    for await (const chunk of call) received += (chunk as Buffer).byteLength;
    if (received !== SIZE) throw new Error(`grpc-js sent ${received} of ${SIZE} bytes`);
  }

  // One warm-up each, then RUNS interleaved timed runs each; the median is reported.
  await viaStorage();
  await viaRawHttp2();
  await viaGrpcJs();
  const [storageRate, rawRate, grpcRate] = (await interleavedThroughput(RUNS, SIZE, [viaStorage, viaRawHttp2, viaGrpcJs])) as [
    number,
    number,
    number,
  ];

  console.log(`download of ${SIZE / MiB} MiB from local disk, 64 KiB chunks, server and client in separate processes, median of ${RUNS} interleaved runs`);
  console.log(`  StorageService (connect-node, gRPC h2c): ${storageRate.toFixed(0)} MB/s`);
  console.log(`  raw node:http2 stream (tuned windows):   ${rawRate.toFixed(0)} MB/s`);
  console.log(`  bare grpc-js server streaming:           ${grpcRate.toFixed(0)} MB/s`);
  console.log(`  ratio storage / raw http2: ${(storageRate / rawRate).toFixed(2)}`);
  console.log(`  ratio storage / grpc-js:   ${(storageRate / grpcRate).toFixed(2)}`);

  grpcClient.close();
  h2Session.close();
  child.stdin!.end();
  await once(child, "exit");
}

if (process.argv[2] === "serve") await serve();
else await measure();
