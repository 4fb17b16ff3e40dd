import { clone } from "@bufbuild/protobuf";
import {
  type NodeRun,
  NodeRunSchema,
  type ReportNodeEventsRequest,
  type Run,
  type RunEvent,
  RunSchema,
  type RunState,
} from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { isFinalRunState, type RunPage, type RunStore } from "./run-store.js";
import { RunStoreListeners } from "./run-store-listeners.js";

interface StoredRun {
  /** The workspace-scoped idempotency key that names this run, if any. */
  readonly idempotencyKey?: string;
  /** The owner's live snapshot; the owner never mutates it after handing it over without appending again. */
  snapshot: Run;
  readonly events: RunEvent[];
  lease?: { owner: string; expiresAt: number };
  cancelReason?: string;
}

/**
 * Runs in process memory, for the embedded runtime: lost on restart, so nothing is ever recovered.
 * Only the newest `maxFinishedRuns` finished runs are kept, so a long-lived process stays bounded.
 */
export class MemoryRunStore implements RunStore {
  private readonly runs = new Map<string, StoredRun>();
  private readonly finished: string[] = [];
  private readonly idempotency = new Map<string, string>();
  private readonly listeners = new RunStoreListeners();
  /** Cache entries in insertion order (a Map keeps it), so the oldest go first past `maxCacheEntries`. */
  private readonly cache = new Map<string, { entry: NodeRun; expiresAt: number }>();

  constructor(
    private readonly maxFinishedRuns = 1000,
    private readonly maxCacheEntries = 10_000,
  ) {}

  async create(run: Run, events: RunEvent[], idempotencyKey: string): Promise<{ run: Run; created: boolean }> {
    const key = `${run.workspace}\u0000${idempotencyKey}`;
    const existing = idempotencyKey ? this.idempotency.get(key) : undefined;
    const stored = existing ? this.runs.get(existing) : undefined;
    if (stored) return { run: clone(RunSchema, stored.snapshot), created: false };
    this.runs.set(run.runId, { snapshot: clone(RunSchema, run), events: [...events], ...(idempotencyKey ? { idempotencyKey: key } : {}) });
    if (idempotencyKey) this.idempotency.set(key, run.runId);
    return { run, created: true };
  }

  async get(runId: string): Promise<Run | undefined> {
    const stored = this.runs.get(runId);
    return stored && clone(RunSchema, stored.snapshot);
  }

  async list(workspace: string, states: readonly RunState[], pageSize: number, after: string): Promise<RunPage> {
    const matching = [...this.runs.values()]
      .map((r) => r.snapshot)
      .filter((r) => r.workspace === workspace && (!after || r.runId < after) && (states.length === 0 || states.includes(r.state)))
      .sort((a, b) => (a.runId < b.runId ? 1 : -1));
    const runs = matching.slice(0, pageSize).map((r) => clone(RunSchema, r));
    return { runs, nextAfter: matching.length > pageSize ? (runs.at(-1)?.runId ?? "") : "" };
  }

  async append(runId: string, owner: string, events: readonly RunEvent[], snapshot: Run): Promise<boolean> {
    const stored = this.runs.get(runId);
    if (!stored || !this.holds(stored, owner)) return false;
    const first = events[0];
    if (first && first.seq !== BigInt(stored.events.length + 1)) return false;
    stored.events.push(...events);
    stored.snapshot = snapshot;
    this.listeners.eventsAppended(runId);
    if (isFinalRunState(snapshot.state)) this.retire(runId);
    return true;
  }

  async events(runId: string, afterSeq: bigint, limit: number): Promise<RunEvent[]> {
    const start = Number(afterSeq);
    return this.runs.get(runId)?.events.slice(start, start + limit) ?? [];
  }

  watch(runId: string, listener: () => void): () => void {
    return this.listeners.watch(runId, listener);
  }

  async acquireLease(runId: string, owner: string, ttlMs: number): Promise<boolean> {
    const stored = this.runs.get(runId);
    if (!stored) return false;
    if (stored.lease && stored.lease.owner !== owner && stored.lease.expiresAt > Date.now()) return false;
    stored.lease = { owner, expiresAt: Date.now() + ttlMs };
    return true;
  }

  async releaseLease(runId: string, owner: string): Promise<void> {
    const stored = this.runs.get(runId);
    if (stored?.lease?.owner === owner) delete stored.lease;
  }

  async requestCancel(runId: string, reason: string): Promise<void> {
    const stored = this.runs.get(runId);
    if (!stored) return;
    stored.cancelReason ??= reason;
    this.listeners.cancelRequested(runId);
  }

  async cancelRequest(runId: string): Promise<string | undefined> {
    return this.runs.get(runId)?.cancelReason;
  }

  onCancelRequested(listener: (runId: string) => void): () => void {
    return this.listeners.onCancelRequested(listener);
  }

  async forwardReport(report: ReportNodeEventsRequest): Promise<void> {
    this.listeners.reported(report);
  }

  onReport(listener: (report: ReportNodeEventsRequest) => void): () => void {
    return this.listeners.onReport(listener);
  }

  async cacheGet(workspace: string, key: string): Promise<NodeRun | undefined> {
    const found = this.cache.get(`${workspace}\u0000${key}`);
    return found && found.expiresAt > Date.now() ? clone(NodeRunSchema, found.entry) : undefined;
  }

  async cachePut(workspace: string, key: string, entry: NodeRun, ttlMs: number): Promise<void> {
    const id = `${workspace}\u0000${key}`;
    // Re-inserted at the end: a refreshed entry is the newest.
    this.cache.delete(id);
    this.cache.set(id, { entry: clone(NodeRunSchema, entry), expiresAt: Date.now() + ttlMs });
    for (const [oldest, { expiresAt }] of this.cache) {
      if (this.cache.size <= this.maxCacheEntries && expiresAt > Date.now()) break;
      this.cache.delete(oldest);
    }
  }

  async unfinished(): Promise<string[]> {
    return [...this.runs.values()].filter((r) => !isFinalRunState(r.snapshot.state)).map((r) => r.snapshot.runId);
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }

  private retire(runId: string): void {
    this.finished.push(runId);
    while (this.finished.length > this.maxFinishedRuns) {
      const oldest = this.finished.shift() as string;
      const key = this.runs.get(oldest)?.idempotencyKey;
      if (key) this.idempotency.delete(key);
      this.runs.delete(oldest);
    }
  }

  private holds(stored: StoredRun, owner: string): boolean {
    return stored.lease?.owner === owner && stored.lease.expiresAt > Date.now();
  }
}
