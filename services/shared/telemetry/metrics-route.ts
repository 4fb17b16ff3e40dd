import type { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus";
import type { HttpRoute } from "../http-route.js";

/** Prometheus text exposition format, the content type scrapers expect. */
const contentType = "text/plain; version=0.0.4; charset=utf-8";

/**
 * `GET <path>`: the Prometheus scrape endpoint, on the service's own port. It collects through the
 * exporter (a pull reader) and serializes the way the exporter's own handler does; that handler is
 * bound to Node's `ServerResponse`, and this route must run on any Fetch-API server. No
 * authentication, like health checks: restrict it by network policy, or switch it off.
 */
export function createMetricsRoute(exporter: PrometheusExporter, serializer: PrometheusSerializer, path: string): HttpRoute {
  return {
    method: "GET",
    pathPrefix: path,
    async handle(request) {
      if (new URL(request.url).pathname !== path) {
        return new Response(`no route for ${new URL(request.url).pathname}\n`, { status: 404, headers: { "content-type": "text/plain; charset=utf-8" } });
      }
      const { resourceMetrics, errors } = await exporter.collect();
      for (const error of errors) console.warn("telemetry: a metric callback failed:", error);
      return new Response(serializer.serialize(resourceMetrics), { headers: { "content-type": contentType, "cache-control": "no-store" } });
    },
  };
}
