// Download throughput through the StorageService (gRPC over h2c, 64 KiB chunks) as a ratio to a raw
// node:http2 stream and to a bare @grpc/grpc-js server-streaming server, all measured in this run on
// the same bytes from local disk. Usage: npx tsx bench/storage-download.ts  (BENCH_MIB=256 BENCH_RUNS=5)
import { createWriteStream, createReadStream } from "node:fs";
import { once } from "node:events";
import { connect, createServer } from "node:http2";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { UploadHeaderSchema, UploadRequestSchema } from "../gen/mentatlab/v1/storage_pb.js";
import { makeTempDir, removeTempDir } from "../test/harness/index.js";
import { envNumber, MiB, pseudoRandomChunks, startStorageServer, throughput } from "./storage-bench-support.js";

const SIZE = envNumber("BENCH_MIB", 256) * MiB;
const RUNS = envNumber("BENCH_RUNS", 5);
const CHUNK = 64 * 1024;
const STREAM_WINDOW = 4 * MiB;
const CONNECTION_WINDOW = 32 * MiB;

const dir = makeTempDir("storage-download-bench");
const file = join(dir, "object.bin");
await pipeline(Readable.from(pseudoRandomChunks(SIZE, MiB)), createWriteStream(file));

// 1. The StorageService on the one-port server, holding the same bytes.
const storage = await startStorageServer({ STORAGE_DIR: join(dir, "storage") });
async function* uploadRequests() {
  yield create(UploadRequestSchema, { part: { case: "header", value: create(UploadHeaderSchema, { sizeBytes: BigInt(SIZE) }) } });
  for await (const chunk of pseudoRandomChunks(SIZE, MiB)) yield create(UploadRequestSchema, { part: { case: "chunk", value: chunk } });
}
const { ref } = await storage.client.upload(uploadRequests());
async function viaStorage(): Promise<void> {
  let received = 0;
  for await (const msg of storage.client.download({ refId: ref!.id, chunkBytes: CHUNK })) {
    if (msg.part.case === "chunk") received += msg.part.value.data.byteLength;
  }
  if (received !== SIZE) throw new Error(`storage sent ${received} of ${SIZE} bytes`);
}

// 2. Raw node:http2: the file piped into a response stream, tuned windows on both ends.
const h2 = createServer({ settings: { initialWindowSize: STREAM_WINDOW } }, (_req, res) => {
  createReadStream(file, { highWaterMark: CHUNK }).pipe(res);
});
h2.on("session", (s) => s.setLocalWindowSize(CONNECTION_WINDOW));
h2.listen(0, "127.0.0.1");
await once(h2, "listening");
const h2Session = connect(`http://127.0.0.1:${(h2.address() as AddressInfo).port}`, { settings: { initialWindowSize: STREAM_WINDOW } });
await once(h2Session, "connect");
h2Session.setLocalWindowSize(CONNECTION_WINDOW);
async function viaRawHttp2(): Promise<void> {
  const req = h2Session.request({ ":path": "/" });
  let received = 0;
  for await (const chunk of req) received += (chunk as Buffer).byteLength;
  if (received !== SIZE) throw new Error(`raw http2 sent ${received} of ${SIZE} bytes`);
}

// 3. A bare grpc-js server-streaming method sending the file's 64 KiB chunks as raw messages.
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
const GrpcClient = grpc.makeGenericClientConstructor(definition, "Bench");
const grpcClient = new GrpcClient(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure());
async function viaGrpcJs(): Promise<void> {
  const call = (grpcClient as unknown as { download(req: Buffer): grpc.ClientReadableStream<Buffer> }).download(Buffer.alloc(0));
  let received = 0;
  for await (const chunk of call) received += (chunk as Buffer).byteLength;
  if (received !== SIZE) throw new Error(`grpc-js sent ${received} of ${SIZE} bytes`);
}

// Warm-up once each, then interleave nothing: each contender gets RUNS runs and its median.
await viaStorage();
await viaRawHttp2();
await viaGrpcJs();
const storageRate = await throughput(RUNS, SIZE, viaStorage);
const rawRate = await throughput(RUNS, SIZE, viaRawHttp2);
const grpcRate = await throughput(RUNS, SIZE, viaGrpcJs);

console.log(`download of ${SIZE / MiB} MiB from local disk, 64 KiB chunks, median of ${RUNS} runs`);
console.log(`  StorageService (connect-node, gRPC h2c): ${storageRate.toFixed(0)} MB/s`);
console.log(`  raw node:http2 stream (tuned windows):   ${rawRate.toFixed(0)} MB/s`);
console.log(`  bare grpc-js server streaming:           ${grpcRate.toFixed(0)} MB/s`);
console.log(`  ratio storage / raw http2: ${(storageRate / rawRate).toFixed(2)}`);
console.log(`  ratio storage / grpc-js:   ${(storageRate / grpcRate).toFixed(2)}`);

grpcClient.close();
grpcServer.forceShutdown();
h2Session.close();
h2.close();
await storage.close();
removeTempDir(dir);
