import { setTimeout as sleep } from "node:timers/promises";
import type { ConnectError } from "@connectrpc/connect";
import { BackpressurePolicy } from "../../gen/mentatlab/v1/common_pb.js";
import { type StreamInfo, StreamState } from "../../gen/mentatlab/v1/stream_pb.js";
import { consumerFellBehind, creditBytes, firstBehind, type FlowControlLimits, pacedConsumers, windowBytesOf } from "./flow-control.js";
import type { StreamKey, StreamStore } from "./stream-store.js";

// How often a held producer looks again at its consumers' positions (they may be on another replica).
const HOLD_POLL_MS = 10;

/**
 * One producer call's side of its stream's flow control: how much it may store before a `block`
 * consumer is a window behind (waiting while it may store nothing), and the check after each append
 * that fails the stream once a `fail` consumer is. A stream without such consumers costs nothing.
 */
export class ProducerPacing {
  private readonly blocking;
  private readonly failing;

  constructor(
    private readonly store: StreamStore,
    private readonly key: StreamKey,
    info: StreamInfo,
    private readonly limits: FlowControlLimits,
  ) {
    this.blocking = pacedConsumers(info, BackpressurePolicy.BLOCK);
    this.failing = pacedConsumers(info, BackpressurePolicy.FAIL);
  }

  /** Bytes to read ahead of storage: no more than the smallest `block` window, so a held producer's reads stop soon. */
  readAheadBytes(defaultBytes: number): number {
    return Math.min(defaultBytes, ...this.blocking.map((c) => windowBytesOf(c, this.limits)));
  }

  /**
   * Payload bytes the producer may store now, waiting while that is none: Infinity without `block`
   * consumers attached, or once the stream ended (the append then says so).
   */
  async credit(signal: AbortSignal): Promise<number> {
    if (this.blocking.length === 0) return Infinity;
    for (;;) {
      const record = await this.store.get(this.key);
      if (!record || record.info.state !== StreamState.OPEN) return Infinity;
      const credit = creditBytes(record, this.blocking, this.limits, Date.now());
      if (credit > 0) return credit;
      await sleep(HOLD_POLL_MS, undefined, { signal }).catch(() => signal.throwIfAborted());
    }
  }

  /**
   * After an append: once a `fail` consumer is more than its window behind, ends the stream with
   * stream_error and returns that error for the producer's call.
   */
  async endIfConsumerBehind(): Promise<ConnectError | undefined> {
    if (this.failing.length === 0) return undefined;
    const record = await this.store.get(this.key);
    const lag = record && firstBehind(record, this.failing, this.limits, Date.now());
    if (!lag) return undefined;
    const error = consumerFellBehind(this.key.id, lag);
    // Ended meanwhile (by its producer or another replica's check): the producer still learns why it stops.
    await this.store.end(this.key, { error: { message: error.rawMessage, code: error.code } }, Date.now()).catch(() => undefined);
    return error;
  }
}
