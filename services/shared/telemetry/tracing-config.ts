import { ConfigError, type Env } from "../env.js";

/** OTLP wire formats the trace exporter can speak (`OTEL_EXPORTER_OTLP_PROTOCOL`). */
export const otlpProtocols = ["http/protobuf", "http/json", "grpc"] as const;

/** Tracing of one process; absent when no OTLP endpoint is configured, which switches tracing off. */
export interface TracingConfig {
  /** `service.name` of every span (`OTEL_SERVICE_NAME`, default `mentatlab-<process>`). */
  readonly serviceName: string;
}

/**
 * Tracing is on when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set and
 * `OTEL_SDK_DISABLED` is not `true`; `processName` names the process in the default service name.
 * The exporter protocol (`OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, else `OTEL_EXPORTER_OTLP_PROTOCOL`,
 * default `http/protobuf`) is chosen by the SDK itself; it is only checked here.
 */
export function tracingConfigFromEnv(env: Env, processName: string): TracingConfig | undefined {
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!endpoint || env.OTEL_SDK_DISABLED?.trim().toLowerCase() === "true") return undefined;
  // The traces-specific variable wins, as in the SDK; the error names whichever one was read.
  const variable = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ? "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL" : "OTEL_EXPORTER_OTLP_PROTOCOL";
  const protocol = (env[variable] || "http/protobuf").trim();
  if (!(otlpProtocols as readonly string[]).includes(protocol)) {
    // The SDK would fall back to http/protobuf with only a warning; a typo must not silently lose spans.
    throw new ConfigError(variable, `one of ${otlpProtocols.join(", ")}`, protocol);
  }
  return { serviceName: env.OTEL_SERVICE_NAME || `mentatlab-${processName}` };
}
