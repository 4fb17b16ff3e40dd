/** Counts of values at or below each bound, plus sum and count: enough for Prometheus and percentiles. */
export class Histogram {
  readonly counts: number[];
  count = 0;
  sum = 0;
  /** Called with each observed value, for exporters that aggregate themselves (OpenTelemetry). */
  onObserve: ((value: number) => void) | undefined;

  constructor(readonly bounds: readonly number[]) {
    this.counts = bounds.map(() => 0);
  }

  observe(value: number): void {
    this.count++;
    this.sum += value;
    const index = this.bounds.findIndex((bound) => value <= bound);
    if (index >= 0) this.counts[index] = (this.counts[index] ?? 0) + 1;
    this.onObserve?.(value);
  }
}

/** The stream service's metrics, named as in the design, kept as plain numbers until telemetry is wired. */
export class StreamMetrics {
  /** Store-to-delivery time of live events, per subscriber delivery. */
  readonly streamLatencyMilliseconds = new Histogram([1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000]);
  /** Open streams across every replica, refreshed by the sweeper. */
  activeStreamsCount = 0;
  /** Payload bytes accepted from producers and delivered to subscribers by this process. */
  readonly streamBandwidthBytes = { published: 0, delivered: 0 };
  /** Streams ended by this process, and how many of them with stream_error. */
  readonly streamEnds = { total: 0, failed: 0 };

  /** Share of streams ended by this process that ended with stream_error. */
  get streamErrorRate(): number {
    return this.streamEnds.total === 0 ? 0 : this.streamEnds.failed / this.streamEnds.total;
  }

  countEnd(failed: boolean): void {
    this.streamEnds.total++;
    if (failed) this.streamEnds.failed++;
  }
}
