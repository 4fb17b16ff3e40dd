/**
 * Names of the instruments the mesh registers (the metrics the README's Metrics section lists). Prometheus shows monotonic
 * counters with a `_total` suffix and histograms as `_bucket`/`_sum`/`_count` series; `seriesOf`
 * gives those names, for alert rules and dashboards.
 */
export const metricNames = {
  /** Histogram of stored upload sizes. */
  uploadSize: "upload_size_bytes",
  /** Histogram of node attempt run times, by agent and the state the attempt ended in. */
  processingDuration: "processing_duration_seconds",
  /** Gauge of bytes stored per workspace. */
  storageUsage: "storage_usage_bytes",
  /** Gauge of the per-workspace storage quota, the denominator of the usage alert. */
  storageQuota: "storage_quota_bytes",
  /** Gauge: share of reference lookups answered by the L1 or L2 cache. */
  referenceCacheHitRatio: "reference_cache_hit_ratio",
  /** Histogram of store-to-delivery latency of live stream events. */
  streamLatency: "stream_latency_milliseconds",
  /** Gauge of open streams (across replicas). */
  activeStreams: "active_streams_count",
  /** Counter of stream payload bytes, by direction (published, delivered). */
  streamBandwidth: "stream_bandwidth_bytes",
  /** Counter of streams ended with stream_error; `stream_error_rate` is its rate over `stream_ends`. */
  streamErrors: "stream_errors",
  /** Counter of streams ended, however they ended. */
  streamEnds: "stream_ends",
} as const;

export type MetricName = (typeof metricNames)[keyof typeof metricNames];

export type InstrumentKind = "histogram" | "gauge" | "counter";

/** Each instrument's kind, which decides how Prometheus names its series. */
export const instrumentKinds: Readonly<Record<MetricName, InstrumentKind>> = {
  upload_size_bytes: "histogram",
  processing_duration_seconds: "histogram",
  storage_usage_bytes: "gauge",
  storage_quota_bytes: "gauge",
  reference_cache_hit_ratio: "gauge",
  stream_latency_milliseconds: "histogram",
  active_streams_count: "gauge",
  stream_bandwidth_bytes: "counter",
  stream_errors: "counter",
  stream_ends: "counter",
};

/** The series names a Prometheus scrape shows for one instrument. */
export function seriesOf(name: MetricName): string[] {
  switch (instrumentKinds[name]) {
    case "histogram":
      return [`${name}_bucket`, `${name}_sum`, `${name}_count`];
    case "counter":
      return [`${name}_total`];
    case "gauge":
      return [name];
  }
}

/** Every series name the mesh exports. */
export const exportedSeries: readonly string[] = (Object.keys(instrumentKinds) as MetricName[]).flatMap(seriesOf);
