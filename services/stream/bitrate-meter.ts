import { create } from "@bufbuild/protobuf";
import { type AdaptBitrate, AdaptBitrateSchema } from "../../gen/mentatlab/v1/stream_pb.js";

/** Headroom below the measured rate, so an encoder that follows the advice stops falling behind. */
const SUGGESTED_FRACTION = 0.8;

/**
 * Measures one producer's payload throughput over a sliding window and advises it, at most once per
 * window, when that falls under the threshold. No verdict before a full window has been observed.
 */
export class BitrateMeter {
  private readonly samples: { timeMs: number; bytes: number }[] = [];
  private bytesInWindow = 0;
  private startedAt: number | undefined;
  private lastAdviceAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly thresholdBitsPerSecond: number,
    private readonly windowMs: number,
  ) {}

  record(bytes: number, nowMs: number): AdaptBitrate | undefined {
    this.startedAt ??= nowMs;
    this.samples.push({ timeMs: nowMs, bytes });
    this.bytesInWindow += bytes;
    while (this.samples.length > 0 && (this.samples[0]?.timeMs ?? nowMs) <= nowMs - this.windowMs) {
      this.bytesInWindow -= this.samples.shift()?.bytes ?? 0;
    }
    if (nowMs - this.startedAt < this.windowMs || nowMs - this.lastAdviceAt < this.windowMs) return undefined;
    const measured = Math.floor((this.bytesInWindow * 8 * 1000) / this.windowMs);
    if (measured >= this.thresholdBitsPerSecond) return undefined;
    this.lastAdviceAt = nowMs;
    const suggested = Math.floor(measured * SUGGESTED_FRACTION);
    return create(AdaptBitrateSchema, {
      measuredBitsPerSecond: BigInt(measured),
      suggestedBitsPerSecond: BigInt(suggested),
      reason:
        `measured ${kbps(measured)} kbit/s over the last ${this.windowMs / 1000} s, under the ` +
        `${kbps(this.thresholdBitsPerSecond)} kbit/s a live media stream needs; lower the encoder bitrate to at most ` +
        `${kbps(suggested)} kbit/s`,
    });
  }
}

function kbps(bitsPerSecond: number): string {
  return (bitsPerSecond / 1000).toFixed(0);
}
