import { createNoopMeter, type Meter } from "@opentelemetry/api";
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import type { Env } from "../env.js";
import type { HttpRoute } from "../http-route.js";
import { telemetryConfigFromEnv } from "./config.js";
import { createMetricsRoute } from "./metrics-route.js";

/** One process's metrics: the meter its instruments are created on, and the routes that export them. */
export interface Telemetry {
  /** Where instruments are created; a no-op meter when metrics are switched off. */
  readonly meter: Meter;
  /** `GET /metrics` (Prometheus text format), or nothing when metrics are switched off. */
  readonly routes: HttpRoute[];
  shutdown(): Promise<void>;
}

const meterName = "mentatlab";

export function createTelemetry(env: Env): Telemetry {
  const config = telemetryConfigFromEnv(env);
  if (!config.metricsEnabled) {
    return { meter: createNoopMeter(), routes: [], shutdown: async () => {} };
  }
  // Scraped through our own route on the service port, never through a listener of the exporter's own.
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const provider = new MeterProvider({ readers: [exporter] });
  return {
    meter: provider.getMeter(meterName),
    routes: [createMetricsRoute(exporter, new PrometheusSerializer(), config.metricsPath)],
    shutdown: () => provider.shutdown(),
  };
}
