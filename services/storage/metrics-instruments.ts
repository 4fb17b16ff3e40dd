import type { Meter } from "@opentelemetry/api";
import { metricNames } from "../shared/telemetry/metric-names.js";
import type { StorageMetrics } from "./metrics.js";

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
/** Spans a text snippet to the largest video the quotas allow. */
const uploadSizeBuckets = [KiB, 64 * KiB, MiB, 16 * MiB, 128 * MiB, GiB, 4 * GiB, 16 * GiB];

/** Binds the storage service's counters to instruments on `meter`; call once per StorageRuntime. */
export function registerStorageMetrics(meter: Meter, metrics: StorageMetrics): void {
  const uploadSize = meter.createHistogram(metricNames.uploadSize, {
    description: "Size of each stored upload.",
    unit: "By",
    advice: { explicitBucketBoundaries: uploadSizeBuckets },
  });
  metrics.onUploadSize = (bytes) => uploadSize.record(bytes);

  meter
    .createObservableGauge(metricNames.storageUsage, {
      description: "Bytes stored per workspace, uploads in flight included (last value this process saw).",
      unit: "By",
    })
    .addCallback((result) => {
      for (const [workspace, bytes] of metrics.workspaceUsedBytes) result.observe(bytes, { workspace });
    });
  meter
    .createObservableGauge(metricNames.storageQuota, { description: "Storage quota of each workspace.", unit: "By" })
    .addCallback((result) => result.observe(metrics.workspaceQuotaBytes));
  meter
    .createObservableGauge(metricNames.referenceCacheHitRatio, {
      description: "Share of reference lookups answered by the L1 or L2 cache since start.",
      unit: "1",
    })
    .addCallback((result) => result.observe(metrics.referenceCacheHitRatio));
}
