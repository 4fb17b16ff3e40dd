import type { NodeRun, ReportNodeEventsRequest, Run, RunEvent, RunState } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { RunState as States } from "../../gen/mentatlab/v1/orchestrator_pb.js";

export interface RunPage {
  readonly runs: Run[];
  /** Run id to continue after; empty at the end. */
  readonly nextAfter: string;
}

/**
 * Persistent run state: snapshots, their gap-free event logs, idempotency keys, and leases that make
 * one replica at a time the writer of a run. Run ids sort by creation time (see run-id.ts), which is
 * the listing order. Every backend passes run-store.conformance.ts.
 */
export interface RunStore {
  /**
   * Stores a new run with its first events, unless `idempotencyKey` (non-empty, per workspace) already
   * names a run: then returns that one and `created: false`.
   */
  create(run: Run, events: RunEvent[], idempotencyKey: string): Promise<{ run: Run; created: boolean }>;
  get(runId: string): Promise<Run | undefined>;
  /** A workspace's runs, newest first, optionally only in `states`, after run id `after`. */
  list(workspace: string, states: readonly RunState[], pageSize: number, after: string): Promise<RunPage>;
  /**
   * Appends events (seq continuing the log with no gap) together with the snapshot they lead to,
   * atomically. Refused with `false`, changing nothing, unless `owner` holds the run's lease and the
   * first seq follows the last stored one.
   */
  append(runId: string, owner: string, events: readonly RunEvent[], snapshot: Run): Promise<boolean>;
  /** Events with seq > `afterSeq`, at most `limit`, in order. */
  events(runId: string, afterSeq: bigint, limit: number): Promise<RunEvent[]>;
  /** Calls `listener` after events of `runId` are appended, by this or any replica; returns the unsubscribe. */
  watch(runId: string, listener: () => void): () => void;
  /** Takes or renews the run's lease for `ttlMs`; false when another owner holds it. */
  acquireLease(runId: string, owner: string, ttlMs: number): Promise<boolean>;
  releaseLease(runId: string, owner: string): Promise<void>;
  /** Records that the run should be cancelled and tells every replica (see onCancelRequested). */
  requestCancel(runId: string, reason: string): Promise<void>;
  /** The reason given to requestCancel, if any. */
  cancelRequest(runId: string): Promise<string | undefined>;
  onCancelRequested(listener: (runId: string) => void): () => void;
  /** Hands a sidecar's report to the replica driving the run, wherever it is (fire and forget). */
  forwardReport(report: ReportNodeEventsRequest): Promise<void>;
  onReport(listener: (report: ReportNodeEventsRequest) => void): () => void;
  /**
   * The node cache (docs/reuse.md): a node's outputs, with `reused` naming the run and node whose agent
   * produced them, by cache key within a workspace; undefined once `ttlMs` given to cachePut has passed.
   */
  cacheGet(workspace: string, key: string): Promise<NodeRun | undefined>;
  /** Stores (or replaces) a cache entry for `ttlMs`. */
  cachePut(workspace: string, key: string, entry: NodeRun, ttlMs: number): Promise<void>;
  /** Ids of runs not in a final state. */
  unfinished(): Promise<string[]>;
  close(): Promise<void>;
}

export function isFinalRunState(state: RunState): boolean {
  return state === States.SUCCEEDED || state === States.FAILED || state === States.CANCELLED;
}
