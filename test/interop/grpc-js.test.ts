import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectedUsage, startInteropTarget, type InteropTarget } from "./target.js";

/** A grpc-js client built from the .proto files at run time, as any third-party Node client would. */
interface DynamicClient extends grpc.Client {
  [method: string]: unknown;
}
type ClientConstructor = new (address: string, credentials: grpc.ChannelCredentials) => DynamicClient;

let target: InteropTarget;
let health: DynamicClient;
let storage: DynamicClient;
let orchestrator: DynamicClient;
let streams: DynamicClient;
let registry: DynamicClient;

beforeAll(async () => {
  target = await startInteropTarget();
  const definition = await protoLoader.load(
    [
      "grpc/health/v1/health.proto",
      "mentatlab/v1/storage.proto",
      "mentatlab/v1/orchestrator.proto",
      "mentatlab/v1/stream.proto",
      "mentatlab/v1/registry.proto",
    ],
    {
      includeDirs: [join(process.cwd(), "proto"), join(process.cwd(), "proto-deps")],
      longs: String,
      enums: String,
      defaults: true,
      oneofs: true,
    },
  );
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    grpc: { health: { v1: { Health: ClientConstructor } } };
    mentatlab: {
      v1: {
        StorageService: ClientConstructor;
        OrchestratorService: ClientConstructor;
        StreamService: ClientConstructor;
        AgentRegistryService: ClientConstructor;
      };
    };
  };
  const address = `127.0.0.1:${target.port}`;
  health = new loaded.grpc.health.v1.Health(address, grpc.credentials.createInsecure());
  storage = new loaded.mentatlab.v1.StorageService(address, grpc.credentials.createInsecure());
  orchestrator = new loaded.mentatlab.v1.OrchestratorService(address, grpc.credentials.createInsecure());
  streams = new loaded.mentatlab.v1.StreamService(address, grpc.credentials.createInsecure());
  registry = new loaded.mentatlab.v1.AgentRegistryService(address, grpc.credentials.createInsecure());
});
afterAll(async () => {
  health?.close();
  storage?.close();
  orchestrator?.close();
  streams?.close();
  registry?.close();
  await target.close();
});

function unary<T>(client: DynamicClient, method: string, request: object, metadata = new grpc.Metadata()): Promise<T> {
  const call = client[method] as (r: object, m: grpc.Metadata, cb: (error: grpc.ServiceError | null, response: T) => void) => void;
  return new Promise((resolve, reject) => call.call(client, request, metadata, (error, response) => (error ? reject(error) : resolve(response))));
}

function serverStream<T>(client: DynamicClient, method: string, request: object, metadata = new grpc.Metadata()): grpc.ClientReadableStream<T> {
  const call = client[method] as (r: object, m: grpc.Metadata) => grpc.ClientReadableStream<T>;
  return call.call(client, request, metadata);
}

const withKey = () => {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", target.authorization);
  return metadata;
};

describe("@grpc/grpc-js with @grpc/proto-loader", () => {
  it("calls Health.Check and Health.Watch", async () => {
    expect(await unary<{ status: string }>(health, "Check", { service: "" })).toEqual({ status: "SERVING" });
    const watch = serverStream<{ status: string }>(health, "Watch", { service: "" });
    const first = await new Promise<{ status: string }>((resolve, reject) => {
      watch.once("data", resolve);
      watch.once("error", reject);
    });
    watch.cancel();
    expect(first).toEqual({ status: "SERVING" });
  });

  it("calls StorageService.GetUsage with a key in metadata and streams Download", async () => {
    const usage = await unary<Record<string, string>>(storage, "GetUsage", {}, withKey());
    expect(usage).toMatchObject(expectedUsage);
    const parts: { part: string; header?: { sha256: string }; chunk?: { data: Buffer } }[] = [];
    for await (const part of serverStream<(typeof parts)[number]>(storage, "Download", { refId: target.object.refId }, withKey())) {
      parts.push(part);
    }
    expect(parts[0]?.header?.sha256).toBe(target.object.sha256);
    expect(parts.flatMap((p) => (p.chunk ? [p.chunk.data.toString()] : [])).join("")).toBe(target.object.text);
  });

  it("sees UNAUTHENTICATED without a key, its message readable as the server wrote it", async () => {
    await expect(unary(storage, "GetUsage", {})).rejects.toMatchObject({
      code: grpc.status.UNAUTHENTICATED,
      details: "missing or invalid credentials: send `Authorization: Bearer <api key>`",
    });
  });

  // Hundreds of violations, listed whole, overflowed the HTTP/2 trailer: the stream was reset, no status.
  const undefinedStates = Array.from({ length: 200 }, (_, i) => 1000 + i);
  const unknownAgents = Array.from({ length: 300 }, (_, i) => `{id: n${i}, agent: org.test.unknown${i}}`).join(", ");
  const badManifest = [
    "id: not a reverse dns id",
    "version: nope",
    "inputs:",
    ...Array.from({ length: 300 }, (_, i) => `  - {name: "bad name ${i}", type: nonsense}`),
  ].join("\n");
  for (const [name, call, ending] of [
    ["ListRuns with 200 bad states", () => unary(orchestrator, "ListRuns", { states: undefinedStates }, withKey()), /and 181 more$/],
    ["ListStreams with 200 bad filter states", () => unary(streams, "ListStreams", { filter: { states: undefinedStates } }, withKey()), /and 180 more$/],
    [
      "SubmitFlow with 300 unknown agents",
      () =>
        unary(
          orchestrator,
          "SubmitFlow",
          { source: { text: `apiVersion: v1\nkind: Flow\nmeta: {id: t}\ngraph:\n  nodes: [${unknownAgents}]\n  edges: []` } },
          withKey(),
        ),
      /and \d+ more \(ValidateFlow lists every one\)$/,
    ],
    [
      "RegisterAgent with 600 violations",
      () => unary(registry, "RegisterAgent", { source: { text: badManifest } }, withKey()),
      /and \d+ more \(ValidateManifest lists every one\)$/,
    ],
  ] as const) {
    it(`receives INVALID_ARGUMENT, not a reset stream, for ${name}`, async () => {
      const error = await call().then(
        () => undefined,
        (err: grpc.ServiceError) => err,
      );
      expect(error?.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(error?.details).toMatch(ending);
      expect(error?.details.length).toBeLessThan(4096);
    });
  }
});
