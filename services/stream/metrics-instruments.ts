import type { Meter } from "@opentelemetry/api";
import { metricNames } from "../shared/telemetry/metric-names.js";
import type { StreamMetrics } from "./metrics.js";

/**
 * Binds the stream service's counters to instruments on `meter`; call once per StreamRuntime.
 * `stream_error_rate` is not an instrument: it is `rate(stream_errors_total) / rate(stream_ends_total)`,
 * computed in PromQL (a recording rule in deploy/kustomize/monitoring).
 */
export function registerStreamMetrics(meter: Meter, metrics: StreamMetrics): void {
  const latency = meter.createHistogram(metricNames.streamLatency, {
    description: "Time from storing a live stream event to delivering it to a subscriber.",
    unit: "ms",
    advice: { explicitBucketBoundaries: [...metrics.streamLatencyMilliseconds.bounds] },
  });
  metrics.streamLatencyMilliseconds.onObserve = (ms) => latency.record(ms);

  meter
    .createObservableGauge(metricNames.activeStreams, { description: "Open streams across every replica.", unit: "{stream}" })
    .addCallback((result) => result.observe(metrics.activeStreamsCount));
  meter
    .createObservableCounter(metricNames.streamBandwidth, {
      description: "Stream payload bytes accepted from producers (published) and sent to subscribers (delivered).",
      unit: "By",
    })
    .addCallback((result) => {
      result.observe(metrics.streamBandwidthBytes.published, { direction: "published" });
      result.observe(metrics.streamBandwidthBytes.delivered, { direction: "delivered" });
    });
  meter
    .createObservableCounter(metricNames.streamErrors, { description: "Streams ended with stream_error by this process.", unit: "{stream}" })
    .addCallback((result) => result.observe(metrics.streamEnds.failed));
  meter
    .createObservableCounter(metricNames.streamEnds, { description: "Streams ended by this process, however they ended.", unit: "{stream}" })
    .addCallback((result) => result.observe(metrics.streamEnds.total));
}
