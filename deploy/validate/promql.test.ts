import { describe, expect, it } from "vitest";
import { seriesNamesIn } from "./promql.js";

describe("seriesNamesIn", () => {
  it("finds series, not functions, label names, keywords or durations", () => {
    expect(seriesNamesIn("histogram_quantile(0.99, sum by (le) (rate(stream_latency_milliseconds_bucket[5m]))) > 200")).toEqual([
      "stream_latency_milliseconds_bucket",
    ]);
    expect(seriesNamesIn('max by (workspace) (storage_usage_bytes{workspace!="x"}) / scalar(max(storage_quota_bytes)) > 0.8').sort()).toEqual([
      "storage_quota_bytes",
      "storage_usage_bytes",
    ]);
    expect(seriesNamesIn("sum(rate(a_total[5m])) by (le) / on(job) group_left(instance) b and c offset 5m")).toEqual(["a_total", "b", "c"]);
    expect(seriesNamesIn("workspace:storage_usage_ratio > 1e-3")).toEqual(["workspace:storage_usage_ratio"]);
  });
});
