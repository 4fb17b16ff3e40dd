export { telemetryConfigFromEnv, type TelemetryConfig } from "./config.js";
export { createMetricsRoute } from "./metrics-route.js";
export { exportedSeries, instrumentKinds, metricNames, seriesOf, type InstrumentKind, type MetricName } from "./metric-names.js";
export { createTelemetry, type Telemetry } from "./telemetry.js";
export { startTracing, type Tracing } from "./tracing.js";
export { injectTraceContext } from "./tracing-client-interceptor.js";
