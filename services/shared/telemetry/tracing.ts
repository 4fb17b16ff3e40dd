import type { Interceptor } from "@connectrpc/connect";
import { context, propagation, trace } from "@opentelemetry/api";
import { NodeSDK } from "@opentelemetry/sdk-node";
import type { Env } from "../env.js";
import { clientTracingInterceptor } from "./tracing-client-interceptor.js";
import { tracingConfigFromEnv } from "./tracing-config.js";
import { serverTracingInterceptor } from "./tracing-server-interceptor.js";

/** One process's tracing: what its server and its clients install, and how to flush what is left. */
export interface Tracing {
  /** Installed first at the edge: one SERVER span per RPC. Empty when tracing is off. */
  readonly serverInterceptors: Interceptor[];
  /** Installed on the clients that call peers: carries the trace on. Empty when tracing is off. */
  readonly clientInterceptors: Interceptor[];
  /** Exports the spans still buffered and unregisters the SDK. */
  shutdown(): Promise<void>;
}

const tracingOff: Tracing = { serverInterceptors: [], clientInterceptors: [], shutdown: async () => {} };

const tracerName = "mentatlab";

// What the SDK reads from the process environment itself to pick and aim its exporter.
const exporterVariables = [
  "OTEL_EXPORTER_OTLP_ENDPOINT",
  "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
  "OTEL_EXPORTER_OTLP_PROTOCOL",
  "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
] as const;

function assertSdkSeesSameExporter(env: Env, sdkEnv: Env): void {
  const differing = exporterVariables.filter((name) => (env[name] || undefined) !== (sdkEnv[name] || undefined));
  if (differing.length > 0) {
    throw new Error(
      `tracing is process-wide and its SDK reads ${differing.join(", ")} from the process environment, ` +
        "which differs from the configuration given: set them in the process environment",
    );
  }
}

/**
 * Starts the OpenTelemetry SDK for traces alone when an OTLP endpoint is configured in `env`, so tracing
 * costs nothing otherwise. The SDK registers process-wide (tracer provider, W3C propagator, context
 * manager), so a process starts it once. Metrics stay on our Prometheus route and nothing is
 * auto-instrumented: spans come from our interceptors only. The exporter (endpoint, protocol, headers,
 * batching) is configured by the SDK from the standard `OTEL_*` variables of the process environment,
 * so `env` must agree with it on the endpoint and protocol: `sdkEnv` is that process environment
 * (`process.env`, handed over by the composition root).
 */
export function startTracing(env: Env, processName: string, sdkEnv: Env): Tracing {
  const config = tracingConfigFromEnv(env, processName);
  if (!config) return tracingOff;
  assertSdkSeesSameExporter(env, sdkEnv);
  const sdk = new NodeSDK({ serviceName: config.serviceName, metricReaders: [], logRecordProcessors: [], instrumentations: [] });
  sdk.start();
  return {
    serverInterceptors: [serverTracingInterceptor(trace.getTracer(tracerName))],
    clientInterceptors: [clientTracingInterceptor()],
    async shutdown() {
      try {
        await sdk.shutdown();
      } finally {
        trace.disable();
        propagation.disable();
        context.disable();
      }
    },
  };
}
