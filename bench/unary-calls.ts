// Unary calls per second: StorageService/GetUsage through the embedded mesh (API key auth, permission
// check and protovalidate on) and through the distributed gateway (gateway -> storage process), as a
// ratio to a bare @grpc/grpc-js server answering the same method with the same storage code, all
// driven by the same grpc-js client at the same concurrency, with the servers' CPU time per call.
// Usage: npx tsx bench/unary-calls.ts (BENCH_SECONDS=3 BENCH_RUNS=3 BENCH_CONCURRENCY=32)
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { createContextValues, createHandlerContext } from "@connectrpc/connect";
import { GetUsageRequestSchema, GetUsageResponseSchema, StorageService } from "../gen/mentatlab/v1/storage_pb.js";
import { startGateway, startServiceProcess } from "../services/mesh/distributed.js";
import { startEmbedded } from "../services/mesh/embedded.js";
import { principalKey } from "../services/shared/principal.js";
import { storageConfigFromEnv } from "../services/storage/config.js";
import { createStorage } from "../services/storage/index.js";
import { makeTempDir, removeTempDir } from "../test/harness/index.js";
import { testPrincipal } from "../test/support/in-memory.js";
import { serveBenchChild, startBenchChild } from "./child-process-support.js";
import { envNumber, median } from "./storage-bench-support.js";
import { machineLoad } from "./stream-bench-support.js";

const SECONDS = envNumber("BENCH_SECONDS", 3);
const RUNS = envNumber("BENCH_RUNS", 3);
const CONCURRENCY = envNumber("BENCH_CONCURRENCY", 32);
const API_KEY = "bench-unary-key-0123456789";
const PATH = `/${StorageService.typeName}/${StorageService.method.getUsage.name}`;

interface Endpoints {
  readonly embedded: number;
  readonly gateway: number;
  readonly bare: number;
}

const identity = (b: Buffer): Buffer => b;

/** Child process: the three servers; prints their ports, exits when stdin closes. */
async function serve(): Promise<void> {
  const dir = makeTempDir("unary-bench");
  const env = {
    MENTATLAB_API_KEYS: `${API_KEY}=bench@ws-bench:admin`,
    MENTATLAB_TOKEN_SECRET: "unary-bench-token-secret-0123456789",
    MENTATLAB_PRESIGN_SECRET: "unary-bench-presign-secret-0123",
    STORAGE_SWEEP_INTERVAL_MS: "0",
  };
  const embedded = await startEmbedded({ env: { ...env, MENTATLAB_DATA_DIR: join(dir, "embedded") }, port: 0 });
  const storageProcess = await startServiceProcess("storage", { ...env, PORT: "0", MENTATLAB_DATA_DIR: join(dir, "storage") });
  // The gateway needs every upstream's address; this benchmark calls only storage.
  const gateway = await startGateway({
    ...env,
    PORT: "0",
    MENTATLAB_DATA_DIR: join(dir, "gateway"),
    MENTATLAB_STORAGE_URL: storageProcess.url,
    MENTATLAB_STREAM_URL: storageProcess.url,
    MENTATLAB_ORCHESTRATOR_URL: storageProcess.url,
  });

  // The bare server runs the same storage code for the same caller, minus authentication and validation.
  const storage = await createStorage(storageConfigFromEnv({ ...env, STORAGE_SWEEP_INTERVAL_MS: "0" }, join(dir, "bare")));
  const principal = testPrincipal({ user: "bench", workspace: "ws-bench" });
  const bare = new grpc.Server();
  bare.addService(
    {
      getUsage: {
        path: PATH,
        requestStream: false,
        responseStream: false,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
      },
    },
    {
      getUsage: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        const contextValues = createContextValues().set(principalKey, principal);
        const context = createHandlerContext({
          service: StorageService,
          method: StorageService.method.getUsage,
          protocolName: "grpc",
          requestMethod: "POST",
          url: PATH,
          contextValues,
        });
        Promise.resolve(storage.impl.getUsage!(fromBinary(GetUsageRequestSchema, call.request), context))
          .then((usage) => callback(null, Buffer.from(toBinary(GetUsageResponseSchema, create(GetUsageResponseSchema, usage)))))
          .catch((err: Error) => callback(err));
      },
    },
  );
  const barePort = await new Promise<number>((resolve, reject) =>
    bare.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
  );
  const endpoints: Endpoints = { embedded: embedded.server.port, gateway: gateway.server.port, bare: barePort };
  await serveBenchChild(endpoints);
  bare.forceShutdown();
  await gateway.close();
  await storageProcess.close();
  await embedded.close();
  await storage.close();
  removeTempDir(dir);
}

/** Calls per second `client` sustains with CONCURRENCY calls in flight for SECONDS, and how many it made. */
async function rate(client: grpc.Client): Promise<{ perSecond: number; calls: number }> {
  const request = Buffer.from(toBinary(GetUsageRequestSchema, create(GetUsageRequestSchema)));
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${API_KEY}`);
  const deadline = performance.now() + SECONDS * 1000;
  let calls = 0;
  const loop = async () => {
    while (performance.now() < deadline) {
      await new Promise<void>((resolve, reject) =>
        client.makeUnaryRequest(PATH, identity, identity, request, metadata, (err, response) => {
          if (err) reject(err);
          else if (!response || fromBinary(GetUsageResponseSchema, response).userLimitBytes === 0n) reject(new Error("empty usage"));
          else resolve();
        }),
      );
      calls++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, loop));
  return { perSecond: calls / ((performance.now() - started) / 1000), calls };
}

/** Parent process: one grpc-js client per server, timed in interleaved rounds. */
async function measure(): Promise<void> {
  const child = await startBenchChild<Endpoints>(fileURLToPath(import.meta.url));
  const ports = child.endpoints;
  const clients = [ports.embedded, ports.gateway, ports.bare].map((port) => new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()));
  for (const client of clients) await rate(client);
  const rates: number[][] = clients.map(() => []);
  // Server CPU per call does not depend on how busy the rest of the machine is, unlike calls per second.
  const cpuPerCall: number[][] = clients.map(() => []);
  for (let run = 0; run < RUNS; run++) {
    for (const [index, client] of clients.entries()) {
      const before = await child.cpuMicros();
      const { perSecond, calls } = await rate(client);
      cpuPerCall[index]!.push(((await child.cpuMicros()) - before) / calls);
      rates[index]!.push(perSecond);
    }
  }
  const [embedded, gateway, bare] = rates.map(median) as [number, number, number];
  const [embeddedCpu, gatewayCpu, bareCpu] = cpuPerCall.map(median) as [number, number, number];
  console.log(`unary ${PATH}, grpc-js client, concurrency ${CONCURRENCY}, median of ${RUNS} interleaved ${SECONDS} s runs (${machineLoad()})`);
  console.log(`  embedded mesh (auth + permission + protovalidate): ${embedded.toFixed(0)} calls/s, ${embeddedCpu.toFixed(0)} µs server CPU per call`);
  console.log(
    `  distributed gateway -> storage process:            ${gateway.toFixed(0)} calls/s, ${gatewayCpu.toFixed(0)} µs server CPU per call (both processes)`,
  );
  console.log(`  bare grpc-js server, same storage code:            ${bare.toFixed(0)} calls/s, ${bareCpu.toFixed(0)} µs server CPU per call`);
  console.log(`  ratio embedded / grpc-js: ${(embedded / bare).toFixed(2)} (CPU per call ${(bareCpu / embeddedCpu).toFixed(2)})`);
  console.log(`  ratio gateway / grpc-js:  ${(gateway / bare).toFixed(2)} (CPU per call ${(bareCpu / gatewayCpu).toFixed(2)})`);
  for (const client of clients) client.close();
  await child.stop();
}

if (process.argv[2] === "serve") await serve();
else await measure();
