/**
 * Metrics (OpenTelemetry SDK, Prometheus text at `GET /metrics`) and, when an OTLP endpoint is
 * configured, tracing: a server span per RPC, continued across the gateway by `traceparent`.
 *
 * @example
 * ```ts
 * // deploy/validate/runtime-imports.ts follows imports even in comments: this path resolves from here.
 * import { createTelemetry } from "../telemetry/index.js";
 *
 * const telemetry = createTelemetry(env); // MENTATLAB_METRICS, MENTATLAB_METRICS_PATH
 * ```
 */
export { telemetryConfigFromEnv, type TelemetryConfig } from "./config.js";
export { createMetricsRoute } from "./metrics-route.js";
export { exportedSeries, instrumentKinds, metricNames, seriesOf, type InstrumentKind, type MetricName } from "./metric-names.js";
export { createTelemetry, type Telemetry } from "./telemetry.js";
export { startTracing, type Tracing } from "./tracing.js";
export { injectTraceContext } from "./tracing-client-interceptor.js";
