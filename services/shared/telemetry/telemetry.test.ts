import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { NodeRunSchema, NodeState } from "../../../gen/mentatlab/v1/orchestrator_pb.js";
import { OrchestratorMetrics } from "../../orchestrator/metrics.js";
import { agentLabel, registerOrchestratorMetrics } from "../../orchestrator/metrics-instruments.js";
import { StorageMetrics } from "../../storage/metrics.js";
import { registerStorageMetrics } from "../../storage/metrics-instruments.js";
import { StreamMetrics } from "../../stream/metrics.js";
import { registerStreamMetrics } from "../../stream/metrics-instruments.js";
import type { HttpRoute } from "../http-route.js";
import { telemetryConfigFromEnv } from "./config.js";
import { exportedSeries } from "./metric-names.js";
import { parsePrometheusText, samplesOf, valueOf, type Scrape } from "./testing.js";
import { createTelemetry } from "./telemetry.js";

async function get(route: HttpRoute, path: string): Promise<Response> {
  return route.handle(new Request(`http://127.0.0.1${path}`), { principal: undefined, signal: new AbortController().signal });
}

async function scrape(route: HttpRoute): Promise<Scrape> {
  const response = await get(route, "/metrics");
  expect(response.status).toBe(200);
  return parsePrometheusText(await response.text());
}

function onlyRoute(routes: readonly HttpRoute[]): HttpRoute {
  expect(routes).toHaveLength(1);
  return routes[0] as HttpRoute;
}

describe("telemetry config", () => {
  it("serves /metrics by default", () => {
    expect(telemetryConfigFromEnv({})).toEqual({ metricsEnabled: true, metricsPath: "/metrics" });
  });

  it("switches off with MENTATLAB_METRICS=off and says what to write otherwise", () => {
    expect(telemetryConfigFromEnv({ MENTATLAB_METRICS: "off" }).metricsEnabled).toBe(false);
    expect(() => telemetryConfigFromEnv({ MENTATLAB_METRICS: "maybe" })).toThrow(/MENTATLAB_METRICS must be "on" or "off"/);
    expect(() => telemetryConfigFromEnv({ MENTATLAB_METRICS_PATH: "metrics" })).toThrow(
      'MENTATLAB_METRICS_PATH must be a path starting with "/", not "metrics"',
    );
  });

  it("exposes no route when off, and its meter accepts instruments", async () => {
    const telemetry = createTelemetry({ MENTATLAB_METRICS: "off" });
    expect(telemetry.routes).toEqual([]);
    registerStreamMetrics(telemetry.meter, new StreamMetrics());
    await telemetry.shutdown();
  });
});

describe("GET /metrics", () => {
  it("answers in the Prometheus text format, and 404 below its path", async () => {
    const telemetry = createTelemetry({});
    const route = onlyRoute(telemetry.routes);
    expect(route).toMatchObject({ method: "GET", pathPrefix: "/metrics" });
    const response = await get(route, "/metrics");
    expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    expect((await get(route, "/metrics/other")).status).toBe(404);
    await telemetry.shutdown();
  });

  it("shows every series the module names, and no other, once all runtimes are bound", async () => {
    const telemetry = createTelemetry({});
    const storage = new StorageMetrics();
    const streams = new StreamMetrics();
    const orchestrator = new OrchestratorMetrics();
    registerStorageMetrics(telemetry.meter, storage);
    registerStreamMetrics(telemetry.meter, streams);
    registerOrchestratorMetrics(telemetry.meter, orchestrator);
    storage.recordUpload(10);
    storage.workspaceUsedBytes.set("ws", 10);
    streams.streamLatencyMilliseconds.observe(1);
    orchestrator.recordNodeState(create(NodeRunSchema, { agent: "org.a@1.0.0", state: NodeState.SUCCEEDED, startedAt: timestampFromMs(Date.now()) }));

    const seen = new Set((await scrape(onlyRoute(telemetry.routes))).samples.map((s) => s.name).filter((name) => name !== "target_info"));
    expect([...seen].sort()).toEqual([...exportedSeries].sort());
    await telemetry.shutdown();
  });
});

describe("instruments", () => {
  it("processing_duration_seconds: one observation per ended attempt, by agent id and end state", async () => {
    const telemetry = createTelemetry({});
    const metrics = new OrchestratorMetrics();
    registerOrchestratorMetrics(telemetry.meter, metrics);
    const now = Date.now();
    const node = (state: NodeState, startedMs?: number) =>
      create(NodeRunSchema, { agent: "org.example.echo@1.2.0", state, ...(startedMs !== undefined ? { startedAt: timestampFromMs(startedMs) } : {}) });
    metrics.recordNodeState(node(NodeState.RUNNING, now - 5_000), now);
    metrics.recordNodeState(node(NodeState.RETRYING, now - 1_000), now);
    metrics.recordNodeState(node(NodeState.SUCCEEDED, now - 2_500), now);
    metrics.recordNodeState(node(NodeState.SKIPPED), now);
    metrics.recordNodeState(node(NodeState.CANCELLED), now);

    const s = await scrape(onlyRoute(telemetry.routes));
    const labels = (state: string) => ({ agent: "org.example.echo", state });
    expect(valueOf(s, "processing_duration_seconds_count", labels("succeeded"))).toBe(1);
    expect(valueOf(s, "processing_duration_seconds_sum", labels("succeeded"))).toBeCloseTo(2.5, 3);
    expect(valueOf(s, "processing_duration_seconds_bucket", { ...labels("succeeded"), le: "2.5" })).toBe(1);
    expect(valueOf(s, "processing_duration_seconds_bucket", { ...labels("succeeded"), le: "1" })).toBe(0);
    expect(valueOf(s, "processing_duration_seconds_count", labels("retrying"))).toBe(1);
    expect(samplesOf(s, "processing_duration_seconds_count", { state: "running" })).toEqual([]);
    expect(samplesOf(s, "processing_duration_seconds_count", { state: "skipped" })).toEqual([]);
    expect(metrics.nodeAttemptsEnded).toBe(2);
    await telemetry.shutdown();
  });

  it("agent label drops the version only", () => {
    expect(agentLabel("org.example.echo@1.2.0")).toBe("org.example.echo");
    expect(agentLabel("org.example.echo")).toBe("org.example.echo");
  });

  it("stream instruments: latency buckets are the stream service's own, counters are cumulative", async () => {
    const telemetry = createTelemetry({});
    const metrics = new StreamMetrics();
    registerStreamMetrics(telemetry.meter, metrics);
    metrics.streamLatencyMilliseconds.observe(3);
    metrics.streamLatencyMilliseconds.observe(300);
    metrics.streamLatencyMilliseconds.observe(9_000);
    metrics.streamBandwidthBytes.published += 4096;
    metrics.streamBandwidthBytes.delivered += 8192;
    metrics.countEnd(false);
    metrics.countEnd(true);
    metrics.activeStreamsCount = 7;

    const s = await scrape(onlyRoute(telemetry.routes));
    expect(s.types.get("stream_latency_milliseconds")).toBe("histogram");
    expect(valueOf(s, "stream_latency_milliseconds_bucket", { le: "5" })).toBe(1);
    expect(valueOf(s, "stream_latency_milliseconds_bucket", { le: "500" })).toBe(2);
    expect(valueOf(s, "stream_latency_milliseconds_bucket", { le: "+Inf" })).toBe(3);
    expect(valueOf(s, "stream_latency_milliseconds_sum")).toBe(9_303);
    expect(s.types.get("stream_bandwidth_bytes_total")).toBe("counter");
    expect(valueOf(s, "stream_bandwidth_bytes_total", { direction: "published" })).toBe(4096);
    expect(valueOf(s, "stream_bandwidth_bytes_total", { direction: "delivered" })).toBe(8192);
    expect(valueOf(s, "stream_errors_total")).toBe(1);
    expect(valueOf(s, "stream_ends_total")).toBe(2);
    expect(s.types.get("active_streams_count")).toBe("gauge");
    expect(valueOf(s, "active_streams_count")).toBe(7);
    await telemetry.shutdown();
  });
});
