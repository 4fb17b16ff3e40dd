import { Code, ConnectError } from "@connectrpc/connect";
import { maxDurationMessage } from "./errors.js";
import type { StreamMetrics } from "./metrics.js";
import type { StreamStore } from "./stream-store.js";

export interface Sweeper {
  /** One pass, for tests and shutdown; the timer runs them on its own otherwise. */
  sweep(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Periodically ends streams past their maximum duration (producers that went quiet never hit the
 * check on append), trims events past the retention time and refreshes the open-stream gauge.
 * Every replica sweeps; ending is atomic in the store, so the losers of a race see FAILED_PRECONDITION.
 */
export function startSweeper(store: StreamStore, metrics: StreamMetrics, intervalMs: number): Sweeper {
  let running: Promise<void> | undefined;

  async function pass(): Promise<void> {
    const now = Date.now();
    for (const key of await store.overdue(now)) {
      const record = await store.get(key);
      if (!record) continue;
      try {
        await store.end(key, { error: { message: maxDurationMessage(record.deadlineMs), code: Code.DeadlineExceeded } }, now);
        metrics.countEnd(true);
      } catch (err) {
        if (ConnectError.from(err).code !== Code.FailedPrecondition) throw err;
      }
    }
    await store.trim(now);
    metrics.activeStreamsCount = await store.countOpen();
  }

  const sweep = (): Promise<void> => {
    running ??= pass().finally(() => {
      running = undefined;
    });
    return running;
  };

  const timer = setInterval(() => {
    // A failed pass (e.g. Redis restarting) is retried on the next tick.
    sweep().catch(() => undefined);
  }, intervalMs);
  timer.unref();

  return {
    sweep,
    async stop() {
      clearInterval(timer);
      await running?.catch(() => undefined);
    },
  };
}
