import type { ReportNodeEventsRequest } from "../../gen/mentatlab/v1/orchestrator_pb.js";

/**
 * A run store's listeners in this process: watchers of each run's events, and listeners for cancel
 * requests and forwarded reports. Every backend fans out to them in memory (Redis once its pub/sub
 * message arrives), so a process needs one subscription per kind however many listen.
 */
export class RunStoreListeners {
  private readonly watchers = new Map<string, Set<() => void>>();
  private readonly cancelListeners = new Set<(runId: string) => void>();
  private readonly reportListeners = new Set<(report: ReportNodeEventsRequest) => void>();

  /** See RunStore.watch; returns the unsubscribe function. */
  watch(runId: string, listener: () => void): () => void {
    const set = this.watchers.get(runId) ?? new Set();
    set.add(listener);
    this.watchers.set(runId, set);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.watchers.delete(runId);
    };
  }

  onCancelRequested(listener: (runId: string) => void): () => void {
    this.cancelListeners.add(listener);
    return () => this.cancelListeners.delete(listener);
  }

  onReport(listener: (report: ReportNodeEventsRequest) => void): () => void {
    this.reportListeners.add(listener);
    return () => this.reportListeners.delete(listener);
  }

  /** Tells the run's watchers that it has new events. */
  eventsAppended(runId: string): void {
    for (const listener of this.watchers.get(runId) ?? []) listener();
  }

  /** Tells every watcher to look at the store again, e.g. after notifications may have been missed. */
  wakeAllWatchers(): void {
    for (const set of this.watchers.values()) for (const listener of set) listener();
  }

  cancelRequested(runId: string): void {
    for (const listener of this.cancelListeners) listener(runId);
  }

  reported(report: ReportNodeEventsRequest): void {
    for (const listener of this.reportListeners) listener(report);
  }

  clear(): void {
    this.watchers.clear();
    this.cancelListeners.clear();
    this.reportListeners.clear();
  }
}
