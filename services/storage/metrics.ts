/**
 * Counters the service keeps for the OpenTelemetry metrics the README's Metrics section names
 * (`reference_cache_hit_ratio`, `upload_size_bytes`, `storage_usage_bytes`); the server wires them to exporters.
 */
export class StorageMetrics {
  /** Last known bytes stored (and held by uploads in flight) per workspace this process has touched. */
  readonly workspaceUsedBytes = new Map<string, number>();
  /** The per-workspace quota, so alerts can compare usage with it. */
  workspaceQuotaBytes = 0;
  referenceCacheLookups = 0;
  referenceCacheHits = 0;
  uploadCount = 0;
  uploadBytesTotal = 0;
  /** Called with each stored upload's size, for the `upload_size_bytes` histogram. */
  onUploadSize: ((bytes: number) => void) | undefined;

  /** `reference_cache_hit_ratio`: share of ref lookups answered by L1 or L2; 0 before any lookup. */
  get referenceCacheHitRatio(): number {
    return this.referenceCacheLookups === 0 ? 0 : this.referenceCacheHits / this.referenceCacheLookups;
  }

  recordUpload(bytes: number): void {
    this.uploadCount += 1;
    this.uploadBytesTotal += bytes;
    this.onUploadSize?.(bytes);
  }
}
