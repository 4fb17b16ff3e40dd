import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { trace } from "@opentelemetry/api";
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { PinType } from "../../../gen/mentatlab/v1/common_pb.js";
import { StorageService, UploadRequestSchema, type UploadRequest } from "../../../gen/mentatlab/v1/storage_pb.js";
import { StreamService } from "../../../gen/mentatlab/v1/stream_pb.js";
import { freePort, LOOPBACK, makeTempDir, portOpen, removeTempDir, spawnManaged, waitUntilReady, type ManagedProcess } from "../../../test/harness/index.js";
import { meshSecurity } from "../../mesh/security.js";
import { startTracing } from "./tracing.js";
import { workspaceAttribute } from "./tracing-server-interceptor.js";

const repo = fileURLToPath(new URL("../../../", import.meta.url));
const apiKey = "mk_tracing_test_key_7f3a9c2e51b04d68";
const workspace = "ws-trace";

// The OTLP/JSON shapes the receiver reads (ids are hex, as the OTLP JSON encoding prescribes).
interface OtlpValue {
  stringValue?: string;
  intValue?: number | string;
}
interface OtlpAttribute {
  key: string;
  value: OtlpValue;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: OtlpAttribute[];
  status?: { code?: number; message?: string };
}
interface OtlpExport {
  resourceSpans: { resource: { attributes: OtlpAttribute[] }; scopeSpans: { spans: OtlpSpan[] }[] }[];
}
interface ReceivedSpan extends OtlpSpan {
  service: string;
}

const spanKindServer = 2;
const statusCodeError = 2;

/** A loopback OTLP/HTTP collector that keeps every request it is sent. */
class OtlpReceiver {
  readonly paths: string[] = [];
  readonly bodies: string[] = [];
  readonly spans: ReceivedSpan[] = [];
  private readonly server: Server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on("data", (part: Buffer) => parts.push(part));
    req.on("end", () => {
      const raw = Buffer.concat(parts);
      const body = (req.headers["content-encoding"] === "gzip" ? gunzipSync(raw) : raw).toString("utf8");
      this.paths.push(req.url ?? "");
      this.bodies.push(body);
      if (req.url === "/v1/traces") this.collect(JSON.parse(body) as OtlpExport);
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, LOOPBACK, resolve));
    return `http://${LOOPBACK}:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Waits until spans named `name` arrived from each of `services`. */
  async spansOf(name: string, traceId: string, services: readonly string[]): Promise<Map<string, ReceivedSpan>> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const found = new Map(this.spans.filter((s) => s.name === name && s.traceId === traceId).map((s) => [s.service, s]));
      if (services.every((service) => found.has(service))) return found;
      if (Date.now() > deadline) throw new Error(`spans ${name} of ${services.join(", ")} not received; got ${[...found.keys()].join(", ")}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  private collect(request: OtlpExport): void {
    for (const { resource, scopeSpans } of request.resourceSpans) {
      const service = stringAttribute(resource.attributes, "service.name") ?? "";
      for (const { spans } of scopeSpans) this.spans.push(...spans.map((span) => ({ ...span, service })));
    }
  }
}

function attribute(attributes: OtlpAttribute[], key: string): OtlpValue | undefined {
  return attributes.find((a) => a.key === key)?.value;
}

function stringAttribute(attributes: OtlpAttribute[], key: string): string | undefined {
  return attribute(attributes, key)?.stringValue;
}

function intAttribute(attributes: OtlpAttribute[], key: string): number | undefined {
  const value = attribute(attributes, key)?.intValue;
  return value === undefined ? undefined : Number(value);
}

function newTraceparent(): { header: string; traceId: string; parentId: string } {
  const traceId = randomBytes(16).toString("hex");
  const parentId = randomBytes(8).toString("hex");
  return { header: `00-${traceId}-${parentId}-01`, traceId, parentId };
}

describe("tracing across the distributed mesh", () => {
  const receiver = new OtlpReceiver();
  const processes: ManagedProcess[] = [];
  let dataDir = "";
  let gatewayUrl = "";

  beforeAll(async () => {
    const endpoint = await receiver.listen();
    dataDir = makeTempDir("tracing-");
    const ports = { gateway: await freePort(), storage: await freePort(), stream: await freePort(), orchestrator: await freePort() };
    const url = (port: number) => `http://${LOOPBACK}:${port}`;
    gatewayUrl = url(ports.gateway);
    // The orchestrator does not run: the gateway dials a peer only when a call is routed there.
    const env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      MENTATLAB_DATA_DIR: dataDir,
      MENTATLAB_API_KEYS: `${apiKey}=tina@${workspace}:admin`,
      MENTATLAB_TOKEN_SECRET: "tracing-test-token-secret-0123456",
      MENTATLAB_PRESIGN_SECRET: "tracing-test-presign-secret-012345",
      MENTATLAB_SHUTDOWN_GRACE_MS: "500",
      MENTATLAB_STORAGE_URL: url(ports.storage),
      MENTATLAB_STREAM_URL: url(ports.stream),
      MENTATLAB_ORCHESTRATOR_URL: url(ports.orchestrator),
      MENTATLAB_GATEWAY_URL: gatewayUrl,
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_BSP_SCHEDULE_DELAY: "20",
    };
    for (const part of ["storage", "stream", "gateway"] as const) {
      const proc = spawnManaged(process.execPath, ["--import", "tsx", `${repo}services/cli/main.ts`, "serve", part], {
        cwd: repo,
        env: { ...env, PORT: String(ports[part]) },
      });
      processes.push(proc);
      await waitUntilReady(`mentatlab serve ${part}`, proc, () => portOpen(ports[part]));
    }
  }, 60_000);

  afterAll(async () => {
    await Promise.all(processes.map((proc) => proc.terminate("SIGTERM", 3_000)));
    await receiver.close();
    if (dataDir) removeTempDir(dataDir);
  });

  const bearer: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${apiKey}`);
    return next(req);
  };
  const grpcStorage = () => createClient(StorageService, createGrpcTransport({ baseUrl: gatewayUrl, interceptors: [bearer] }));

  /** Checks the gateway's span continues `incoming` and the owning process's span is its child. */
  async function expectLinkedSpans(name: string, incoming: ReturnType<typeof newTraceparent>, owner = "mentatlab-storage") {
    const spans = await receiver.spansOf(name, incoming.traceId, ["mentatlab-gateway", owner]);
    const gateway = spans.get("mentatlab-gateway") as ReceivedSpan;
    const storage = spans.get(owner) as ReceivedSpan;
    expect(gateway.parentSpanId).toBe(incoming.parentId);
    expect(storage.parentSpanId).toBe(gateway.spanId);
    expect(storage.spanId).not.toBe(gateway.spanId);
    for (const span of [gateway, storage]) {
      expect(span.kind).toBe(spanKindServer);
      expect(stringAttribute(span.attributes, "rpc.service")).toBe(name.split("/")[0]);
      expect(stringAttribute(span.attributes, "rpc.method")).toBe(name.split("/")[1]);
      expect(stringAttribute(span.attributes, workspaceAttribute)).toBe(workspace);
    }
    return { gateway, storage };
  }

  it("continues the caller's trace through the gateway into storage, for unary and streaming calls", async () => {
    const usageTrace = newTraceparent();
    await grpcStorage().getUsage({}, { headers: { traceparent: usageTrace.header } });
    const usage = await expectLinkedSpans("mentatlab.v1.StorageService/GetUsage", usageTrace);
    expect(stringAttribute(usage.gateway.attributes, "rpc.system")).toBe("grpc");
    expect(intAttribute(usage.gateway.attributes, "rpc.grpc.status_code")).toBe(0);

    const uploadTrace = newTraceparent();
    async function* requests(): AsyncGenerator<UploadRequest> {
      yield create(UploadRequestSchema, { part: { case: "header", value: { filename: "note.txt", mimeType: "text/plain" } } });
      yield create(UploadRequestSchema, { part: { case: "chunk", value: new TextEncoder().encode("traced bytes\n") } });
    }
    const { ref } = await grpcStorage().upload(requests(), { headers: { traceparent: uploadTrace.header } });
    expect(ref?.sizeBytes).toBe(13n);
    await expectLinkedSpans("mentatlab.v1.StorageService/Upload", uploadTrace);

    const downloadTrace = newTraceparent();
    let received = 0;
    for await (const message of grpcStorage().download({ refId: ref?.id ?? "" }, { headers: { traceparent: downloadTrace.header } })) {
      if (message.part.case === "chunk") received += message.part.value.data.length;
    }
    expect(received).toBe(13);
    const download = await expectLinkedSpans("mentatlab.v1.StorageService/Download", downloadTrace);
    expect(intAttribute(download.storage.attributes, "rpc.grpc.status_code")).toBe(0);
  });

  it("ends the span of a Subscribe served on the encoded fast path when the stream ends", async () => {
    const streams = createClient(StreamService, createGrpcTransport({ baseUrl: gatewayUrl, interceptors: [bearer] }));
    const streamId = (await streams.initStream({ payloadType: PinType.TEXT })).stream?.ref?.streamId ?? "";
    await streams.closeStream({ streamId });
    const subscribeTrace = newTraceparent();
    const events = [];
    for await (const event of streams.subscribe({ streamId }, { headers: { traceparent: subscribeTrace.header } })) events.push(event);
    expect(events.length).toBeGreaterThan(0);
    const { storage: stream } = await expectLinkedSpans("mentatlab.v1.StreamService/Subscribe", subscribeTrace, "mentatlab-stream");
    expect(stream.status?.code ?? 0).not.toBe(statusCodeError);
  });

  it("records the Connect error code on both hops of a failed call", async () => {
    const failing = newTraceparent();
    const connectStorage = createClient(StorageService, createConnectTransport({ baseUrl: gatewayUrl, httpVersion: "1.1", interceptors: [bearer] }));
    const error = await connectStorage.stat({ refId: "no-such-object" }, { headers: { traceparent: failing.header } }).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(error?.code).toBe(Code.NotFound);
    const { gateway, storage } = await expectLinkedSpans("mentatlab.v1.StorageService/Stat", failing);
    expect(stringAttribute(gateway.attributes, "rpc.system")).toBe("connect_rpc");
    expect(stringAttribute(gateway.attributes, "rpc.connect_rpc.error_code")).toBe("not_found");
    expect(gateway.status?.code).toBe(statusCodeError);
    // The gateway reaches storage over gRPC.
    expect(intAttribute(storage.attributes, "rpc.grpc.status_code")).toBe(Code.NotFound);
    expect(storage.status?.code).toBe(statusCodeError);
  });

  it("exports traces only, and never the API key", () => {
    expect(receiver.bodies.length).toBeGreaterThan(0);
    expect(new Set(receiver.paths)).toEqual(new Set(["/v1/traces"]));
    for (const body of receiver.bodies) expect(body).not.toContain(apiKey);
  });
});

describe("tracing in one process", () => {
  const receiver = new OtlpReceiver();
  const probe = () => {
    const span = trace.getTracer("probe").startSpan("probe");
    const recording = span.isRecording();
    span.end();
    return { recording, traceId: span.spanContext().traceId };
  };

  afterEach(() => {
    vi.unstubAllEnvs();
  });

  afterAll(() => receiver.close());

  it("starts no SDK and installs no interceptor when no OTLP endpoint is set, and flushes spans on shutdown when one is", async () => {
    const endpoint = `${await receiver.listen()}/v1/traces`;
    const dataDir = makeTempDir("tracing-off-");
    const base = { MENTATLAB_DATA_DIR: dataDir, MENTATLAB_API_KEYS: `${apiKey}=tina@${workspace}:admin` };
    try {
      const security = meshSecurity(base);
      expect(security.tracing.serverInterceptors).toEqual([]);
      expect(security.tracing.clientInterceptors).toEqual([]);
      expect(probe().recording).toBe(false);

      vi.stubEnv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint);
      vi.stubEnv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json");
      const traced = meshSecurity({ ...base, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" });
      let traceId = "";
      try {
        expect(traced.interceptors).toHaveLength(security.interceptors.length + 1);
        expect(traced.interceptors[0]).toBe(traced.tracing.serverInterceptors[0]);
        expect(traced.tracing.clientInterceptors).toHaveLength(1);
        const span = probe();
        expect(span.recording).toBe(true);
        traceId = span.traceId;
      } finally {
        await traced.tracing.shutdown();
      }
      expect(receiver.spans.find((s) => s.traceId === traceId)?.service).toBe("mentatlab-embedded");
      expect(probe().recording).toBe(false);
    } finally {
      removeTempDir(dataDir);
    }
  });

  it("refuses an endpoint the SDK would not see, since it reads the process environment", () => {
    expect(() => startTracing({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9" }, "test", process.env)).toThrow(
      /OTEL_EXPORTER_OTLP_ENDPOINT from the process environment/,
    );
    expect(probe().recording).toBe(false);
  });

  it("returns the no-op tracing when OTEL_SDK_DISABLED is true", () => {
    const tracing = startTracing({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9", OTEL_SDK_DISABLED: "true" }, "test", process.env);
    expect(tracing.serverInterceptors).toEqual([]);
    expect(probe().recording).toBe(false);
  });
});
