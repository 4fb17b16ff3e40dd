import { create } from "@bufbuild/protobuf";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PinType } from "../../../gen/mentatlab/v1/common_pb.js";
import { OrchestratorService, RunState } from "../../../gen/mentatlab/v1/orchestrator_pb.js";
import { AgentRegistryService } from "../../../gen/mentatlab/v1/registry_pb.js";
import { StorageService, UploadRequestSchema, type UploadRequest } from "../../../gen/mentatlab/v1/storage_pb.js";
import { StreamService, type StreamEvent } from "../../../gen/mentatlab/v1/stream_pb.js";
import { startServiceProcess } from "../../mesh/distributed.js";
import { startEmbedded, type EmbeddedMesh } from "../../mesh/embedded.js";
import { jsonPinValue } from "../../../agent-contract/pin-values.js";
import { parsePrometheusText, valueOf, type Scrape } from "./testing.js";

const apiKey = "mlk_metrics_test_0123456789";
const workspace = "ws-metrics";

describe("GET /metrics on the embedded mesh", () => {
  let mesh: EmbeddedMesh;
  let dataDir: string;
  let clients: ReturnType<typeof meshClients>;

  function meshClients(url: string) {
    const bearer: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Bearer ${apiKey}`);
      return next(req);
    };
    const transport = createGrpcTransport({ baseUrl: url, interceptors: [bearer], acceptCompression: [] });
    return {
      storage: createClient(StorageService, transport),
      streams: createClient(StreamService, transport),
      registry: createClient(AgentRegistryService, transport),
      orchestrator: createClient(OrchestratorService, transport),
    };
  }

  /** What Prometheus would read: no credentials, the text format. */
  async function scrape(): Promise<Scrape> {
    const response = await fetch(`${mesh.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    return parsePrometheusText(await response.text());
  }

  async function eventually(check: (s: Scrape) => void): Promise<void> {
    const deadline = Date.now() + 5_000;
    for (;;) {
      const s = await scrape();
      try {
        check(s);
        return;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "metrics-mesh-"));
    mesh = await startEmbedded({
      port: 0,
      dataDir,
      env: {
        MENTATLAB_API_KEYS: `${apiKey}=dana@${workspace}:admin`,
        STREAM_SWEEP_INTERVAL_MS: "50",
        ORCHESTRATOR_EXECUTOR: "noop",
        ORCHESTRATOR_REGISTRY_FILE: "none",
        MENTATLAB_SHUTDOWN_GRACE_MS: "500",
      },
    });
    clients = meshClients(mesh.url);
  });

  afterAll(async () => {
    await mesh?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("counts an upload's size and the workspace's usage", async () => {
    const bytes = new Uint8Array(100_000).map((_, i) => (i * 31) % 251);
    async function* requests(): AsyncGenerator<UploadRequest> {
      yield create(UploadRequestSchema, {
        part: { case: "header", value: { filename: "noise.bin", mimeType: "application/octet-stream", sizeBytes: BigInt(bytes.length) } },
      });
      for (let offset = 0; offset < bytes.length; offset += 64 * 1024) {
        yield create(UploadRequestSchema, { part: { case: "chunk", value: bytes.subarray(offset, offset + 64 * 1024) } });
      }
    }
    const { ref } = await clients.storage.upload(requests());
    // The first lookup fills the cache, the second is answered by it.
    await clients.storage.stat({ refId: ref?.id ?? "" });
    await clients.storage.stat({ refId: ref?.id ?? "" });

    const s = await scrape();
    expect(s.types.get("upload_size_bytes")).toBe("histogram");
    expect(valueOf(s, "upload_size_bytes_count")).toBe(1);
    expect(valueOf(s, "upload_size_bytes_sum")).toBe(100_000);
    expect(valueOf(s, "upload_size_bytes_bucket", { le: "65536" })).toBe(0);
    expect(valueOf(s, "upload_size_bytes_bucket", { le: "1048576" })).toBe(1);
    expect(valueOf(s, "storage_usage_bytes", { workspace })).toBe(100_000);
    expect(valueOf(s, "storage_quota_bytes")).toBeGreaterThan(100_000);
    const ratio = valueOf(s, "reference_cache_hit_ratio");
    expect(ratio).toBeGreaterThan(0);
    expect(ratio).toBeLessThanOrEqual(1);
  });

  it("counts stream bytes, live latency, open streams, ends and errors", async () => {
    const { stream } = await clients.streams.initStream({ payloadType: PinType.TEXT, mimeType: "text/plain" });
    const streamId = stream?.ref?.streamId ?? "";
    await eventually((s) => expect(valueOf(s, "active_streams_count")).toBe(1));

    const received: StreamEvent[] = [];
    const subscribed = (async () => {
      for await (const event of clients.streams.subscribe({ streamId, afterSeq: 0n })) received.push(event);
    })();
    // Publish only once the subscriber follows live, so its deliveries count as live latency.
    while (received.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    const payload = new TextEncoder().encode("x".repeat(1000));
    await clients.streams.publishBatch({ streamId, payloads: [{ data: payload }, { data: payload }, { data: payload }] });
    await clients.streams.closeStream({ streamId });
    await subscribed;
    const failing = await clients.streams.initStream({ payloadType: PinType.TEXT, mimeType: "text/plain" });
    await clients.streams.closeStream({ streamId: failing.stream?.ref?.streamId ?? "", errorMessage: "the producer crashed" });

    await eventually((s) => expect(valueOf(s, "active_streams_count")).toBe(0));
    const s = await scrape();
    expect(valueOf(s, "stream_bandwidth_bytes_total", { direction: "published" })).toBe(3000);
    expect(valueOf(s, "stream_bandwidth_bytes_total", { direction: "delivered" })).toBe(3000);
    expect(valueOf(s, "stream_latency_milliseconds_count")).toBeGreaterThanOrEqual(3);
    // A loopback delivery in one process: far below the 200 ms the alert is about.
    expect(valueOf(s, "stream_latency_milliseconds_bucket", { le: "200" })).toBe(valueOf(s, "stream_latency_milliseconds_count"));
    expect(valueOf(s, "stream_ends_total")).toBe(2);
    expect(valueOf(s, "stream_errors_total")).toBe(1);
  });

  it("times each node of a run by agent and end state", async () => {
    await clients.registry.registerAgent({
      source: {
        source: {
          case: "text",
          value: "{id: org.metrics.echo, version: 1.0.0, command: ['true'], inputs: [{name: a, type: json}], outputs: [{name: out, type: json}]}",
        },
      },
    });
    const flow =
      "kind: Flow\ngraph:\n  nodes: [{id: first, agent: org.metrics.echo}, {id: second, agent: org.metrics.echo}]\n  edges: [{from: first.out, to: second.a}]";
    const { run } = await clients.orchestrator.submitFlow({
      source: { source: { case: "text", value: flow } },
      inputs: { "first.a": jsonPinValue({ ok: true }) },
    });
    let final = RunState.UNSPECIFIED;
    for await (const event of clients.orchestrator.watchRun({ runId: run?.runId ?? "" })) {
      if (event.event.case === "runState") final = event.event.value.state;
    }
    expect(final).toBe(RunState.SUCCEEDED);

    const s = await scrape();
    expect(valueOf(s, "processing_duration_seconds_count", { agent: "org.metrics.echo", state: "succeeded" })).toBe(2);
    expect(valueOf(s, "processing_duration_seconds_sum", { agent: "org.metrics.echo", state: "succeeded" })).toBeLessThan(5);
  });
});

describe("GET /metrics on distributed processes", () => {
  async function withStreamProcess(extraEnv: Record<string, string>, check: (url: string) => Promise<void>): Promise<void> {
    const dataDir = await mkdtemp(join(tmpdir(), "metrics-process-"));
    const process_ = await startServiceProcess("stream", {
      PORT: "0",
      MENTATLAB_DATA_DIR: dataDir,
      MENTATLAB_API_KEYS: `${apiKey}=dana@${workspace}:admin`,
      MENTATLAB_SHUTDOWN_GRACE_MS: "500",
      ...extraEnv,
    });
    try {
      await check(process_.url);
    } finally {
      await process_.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  }

  it("each process serves its own service's metrics", async () => {
    await withStreamProcess({}, async (url) => {
      const response = await fetch(`${url}/metrics`);
      expect(response.status).toBe(200);
      const s = parsePrometheusText(await response.text());
      expect(valueOf(s, "active_streams_count")).toBe(0);
      expect(s.types.has("upload_size_bytes")).toBe(false);
    });
  });

  it("MENTATLAB_METRICS=off removes the endpoint", async () => {
    await withStreamProcess({ MENTATLAB_METRICS: "off" }, async (url) => {
      expect((await fetch(`${url}/metrics`)).status).toBe(404);
    });
  });
});
