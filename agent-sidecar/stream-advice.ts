import type { AdaptOutputBitrate } from "../gen/mentatlab/v1/sidecar_pb.js";
import { deferred } from "../services/shared/deferred.js";

/**
 * The stream service's latest advice about one output stream, for whoever watches it. Advice is a level
 * (the bitrate to aim for now), not a log: a watcher starts with the latest advice and then gets each
 * newer one; a slow watcher skips straight to the newest instead of queueing stale ones.
 */
export class StreamAdvice {
  private latest: AdaptOutputBitrate | undefined;
  private version = 0;
  private ended = false;
  private changed = deferred();

  publish(advice: AdaptOutputBitrate): void {
    this.latest = advice;
    this.version++;
    this.notify();
  }

  /** The stream was closed: watchers receive what is left and finish. */
  end(): void {
    this.ended = true;
    this.notify();
  }

  /** The latest advice, then each newer one, until the stream ends; throws the reason once `signal` aborts. */
  async *watch(signal: AbortSignal): AsyncGenerator<AdaptOutputBitrate> {
    let seen = 0;
    for (;;) {
      signal.throwIfAborted();
      if (this.latest && this.version > seen) {
        seen = this.version;
        yield this.latest;
      } else if (this.ended) {
        return;
      } else {
        await this.nextChange(signal);
      }
    }
  }

  private notify(): void {
    this.changed.resolve();
    this.changed = deferred();
  }

  private async nextChange(signal: AbortSignal): Promise<void> {
    let onAbort = (): void => undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal.reason);
    });
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      await Promise.race([this.changed.promise, aborted]);
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }
}
