import type { DatabaseSync, SQLInputValue, StatementSync } from "node:sqlite";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  type NodeRun,
  NodeRunSchema,
  type ReportNodeEventsRequest,
  type Run,
  type RunEvent,
  RunEventSchema,
  RunSchema,
  type RunState,
} from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { databaseCall, inTransaction } from "../shared/sqlite.js";
import { isFinalRunState, type RunPage, type RunStore } from "./run-store.js";
import { RunStoreListeners } from "./run-store-listeners.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS runs (
  run_id TEXT PRIMARY KEY,
  workspace TEXT NOT NULL,
  state INTEGER NOT NULL,
  snapshot BLOB NOT NULL,
  idempotency_key TEXT,
  lease_owner TEXT,
  lease_expires_ms INTEGER,
  cancel_reason TEXT,
  finished_at_ms INTEGER
);
CREATE INDEX IF NOT EXISTS runs_by_workspace ON runs (workspace, run_id);
CREATE UNIQUE INDEX IF NOT EXISTS runs_by_idempotency_key ON runs (workspace, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS runs_unfinished ON runs (run_id) WHERE finished_at_ms IS NULL;
CREATE INDEX IF NOT EXISTS runs_by_finish ON runs (finished_at_ms) WHERE finished_at_ms IS NOT NULL;
CREATE TABLE IF NOT EXISTS node_cache (
  workspace TEXT NOT NULL,
  cache_key TEXT NOT NULL,
  entry BLOB NOT NULL,
  expires_ms INTEGER NOT NULL,
  PRIMARY KEY (workspace, cache_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS node_cache_by_expiry ON node_cache (expires_ms);
CREATE TABLE IF NOT EXISTS run_events (
  run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  event BLOB NOT NULL,
  PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
`;

const WHAT = "the run database";

interface LeaseRow {
  lease_owner: string | null;
  lease_expires_ms: number | null;
}

/**
 * Runs in the embedded database, the embedded default: snapshots and their gap-free event logs
 * (seq is part of the key) survive a restart, so GetRun answers and WatchRun resumes afterwards, and
 * a restarted process adopts the runs it was driving once their leases lapse. Notifications stay in
 * this process: one process drives and watches the runs of its file.
 */
export class SqliteRunStore implements RunStore {
  private readonly listeners = new RunStoreListeners();
  private readonly byIdempotencyKey: StatementSync;
  private readonly insertRun: StatementSync;
  private readonly insertEvent: StatementSync;
  private readonly snapshotOf: StatementSync;
  private readonly leaseOf: StatementSync;
  private readonly lastSeq: StatementSync;
  private readonly updateSnapshot: StatementSync;
  private readonly eventsAfter: StatementSync;
  private readonly setLease: StatementSync;
  private readonly clearLease: StatementSync;
  private readonly setCancel: StatementSync;
  private readonly cancelOf: StatementSync;
  private readonly unfinishedIds: StatementSync;
  private readonly purge: StatementSync;
  private readonly cacheEntry: StatementSync;
  private readonly putCacheEntry: StatementSync;
  private readonly purgeCache: StatementSync;
  private readonly finishedRunTtlMs: number;
  private closed = false;

  /** A finished run (snapshot and events) is dropped `finishedRunTtlSeconds` after its final event. */
  constructor(
    private readonly db: DatabaseSync,
    finishedRunTtlSeconds: number,
  ) {
    this.finishedRunTtlMs = Math.max(1, finishedRunTtlSeconds) * 1000;
    databaseCall(WHAT, () => db.exec(SCHEMA));
    this.byIdempotencyKey = db.prepare("SELECT snapshot FROM runs WHERE workspace = ? AND idempotency_key = ?");
    this.insertRun = db.prepare("INSERT INTO runs (run_id, workspace, state, snapshot, idempotency_key) VALUES (?, ?, ?, ?, ?)");
    this.insertEvent = db.prepare("INSERT INTO run_events (run_id, seq, event) VALUES (?, ?, ?)");
    this.snapshotOf = db.prepare("SELECT snapshot FROM runs WHERE run_id = ?");
    this.leaseOf = db.prepare("SELECT lease_owner, lease_expires_ms FROM runs WHERE run_id = ?");
    this.lastSeq = db.prepare("SELECT coalesce(max(seq), 0) AS seq FROM run_events WHERE run_id = ?");
    this.updateSnapshot = db.prepare("UPDATE runs SET snapshot = ?, state = ?, finished_at_ms = ? WHERE run_id = ?");
    this.eventsAfter = db.prepare("SELECT event FROM run_events WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?");
    this.setLease = db.prepare("UPDATE runs SET lease_owner = ?, lease_expires_ms = ? WHERE run_id = ?");
    this.clearLease = db.prepare("UPDATE runs SET lease_owner = NULL, lease_expires_ms = NULL WHERE run_id = ? AND lease_owner = ?");
    this.setCancel = db.prepare("UPDATE runs SET cancel_reason = coalesce(cancel_reason, ?) WHERE run_id = ?");
    this.cancelOf = db.prepare("SELECT cancel_reason FROM runs WHERE run_id = ?");
    this.unfinishedIds = db.prepare("SELECT run_id FROM runs WHERE finished_at_ms IS NULL");
    this.purge = db.prepare("DELETE FROM runs WHERE finished_at_ms IS NOT NULL AND finished_at_ms <= ?");
    this.cacheEntry = db.prepare("SELECT entry FROM node_cache WHERE workspace = ? AND cache_key = ? AND expires_ms > ?");
    this.putCacheEntry = db.prepare("INSERT OR REPLACE INTO node_cache (workspace, cache_key, entry, expires_ms) VALUES (?, ?, ?, ?)");
    this.purgeCache = db.prepare("DELETE FROM node_cache WHERE expires_ms <= ?");
    databaseCall(WHAT, () => this.purge.run(Date.now() - this.finishedRunTtlMs));
    databaseCall(WHAT, () => this.purgeCache.run(Date.now()));
  }

  async create(run: Run, events: RunEvent[], idempotencyKey: string): Promise<{ run: Run; created: boolean }> {
    return databaseCall(WHAT, () =>
      inTransaction(this.db, () => {
        if (idempotencyKey) {
          const existing = this.byIdempotencyKey.get(run.workspace, idempotencyKey) as { snapshot: Uint8Array } | undefined;
          if (existing) return { run: fromBinary(RunSchema, existing.snapshot), created: false };
        }
        this.insertRun.run(run.runId, run.workspace, run.state, toBinary(RunSchema, run), idempotencyKey || null);
        for (const event of events) this.insertEvent.run(run.runId, event.seq, toBinary(RunEventSchema, event));
        return { run, created: true };
      }),
    );
  }

  async get(runId: string): Promise<Run | undefined> {
    const row = databaseCall(WHAT, () => this.snapshotOf.get(runId)) as { snapshot: Uint8Array } | undefined;
    return row && fromBinary(RunSchema, row.snapshot);
  }

  async list(workspace: string, states: readonly RunState[], pageSize: number, after: string): Promise<RunPage> {
    const filters = ["workspace = ?"];
    const params: SQLInputValue[] = [workspace];
    if (after) {
      filters.push("run_id < ?");
      params.push(after);
    }
    if (states.length > 0) {
      filters.push(`state IN (${states.map(() => "?").join(", ")})`);
      params.push(...states);
    }
    // One row past the page says whether there is a next one.
    const sql = `SELECT snapshot FROM runs WHERE ${filters.join(" AND ")} ORDER BY run_id DESC LIMIT ?`;
    const rows = databaseCall(WHAT, () => this.db.prepare(sql).all(...params, pageSize + 1)) as { snapshot: Uint8Array }[];
    const runs = rows.slice(0, pageSize).map((row) => fromBinary(RunSchema, row.snapshot));
    return { runs, nextAfter: rows.length > pageSize ? (runs.at(-1)?.runId ?? "") : "" };
  }

  async append(runId: string, owner: string, events: readonly RunEvent[], snapshot: Run): Promise<boolean> {
    // A driver still flushing while the process shuts down is told, as if its lease were lost, to stop.
    if (this.closed) return false;
    const final = isFinalRunState(snapshot.state);
    const appended = databaseCall(WHAT, () =>
      inTransaction(this.db, () => {
        if (!this.holds(runId, owner)) return false;
        const first = events[0];
        if (first && first.seq !== BigInt((this.lastSeq.get(runId) as { seq: number }).seq) + 1n) return false;
        for (const event of events) this.insertEvent.run(runId, event.seq, toBinary(RunEventSchema, event));
        this.updateSnapshot.run(toBinary(RunSchema, snapshot), snapshot.state, final ? Date.now() : null, runId);
        if (final) this.purge.run(Date.now() - this.finishedRunTtlMs);
        return true;
      }),
    );
    if (appended) this.listeners.eventsAppended(runId);
    return appended;
  }

  async events(runId: string, afterSeq: bigint, limit: number): Promise<RunEvent[]> {
    const rows = databaseCall(WHAT, () => this.eventsAfter.all(runId, afterSeq, limit)) as { event: Uint8Array }[];
    return rows.map((row) => fromBinary(RunEventSchema, row.event));
  }

  watch(runId: string, listener: () => void): () => void {
    return this.listeners.watch(runId, listener);
  }

  async acquireLease(runId: string, owner: string, ttlMs: number): Promise<boolean> {
    return databaseCall(WHAT, () =>
      inTransaction(this.db, () => {
        const lease = this.leaseOf.get(runId) as LeaseRow | undefined;
        if (!lease) return false;
        const heldByOther = lease.lease_owner !== null && lease.lease_owner !== owner && (lease.lease_expires_ms ?? 0) > Date.now();
        if (heldByOther) return false;
        this.setLease.run(owner, Date.now() + Math.ceil(ttlMs), runId);
        return true;
      }),
    );
  }

  async releaseLease(runId: string, owner: string): Promise<void> {
    databaseCall(WHAT, () => this.clearLease.run(runId, owner));
  }

  async requestCancel(runId: string, reason: string): Promise<void> {
    const { changes } = databaseCall(WHAT, () => this.setCancel.run(reason, runId));
    if (changes > 0) this.listeners.cancelRequested(runId);
  }

  async cancelRequest(runId: string): Promise<string | undefined> {
    const row = databaseCall(WHAT, () => this.cancelOf.get(runId)) as { cancel_reason: string | null } | undefined;
    return row?.cancel_reason ?? undefined;
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
    const row = databaseCall(WHAT, () => this.cacheEntry.get(workspace, key, Date.now())) as { entry: Uint8Array } | undefined;
    return row && fromBinary(NodeRunSchema, row.entry);
  }

  async cachePut(workspace: string, key: string, entry: NodeRun, ttlMs: number): Promise<void> {
    // Expired entries go as new ones come, so the table stays about as large as what is live.
    databaseCall(WHAT, () =>
      inTransaction(this.db, () => {
        this.purgeCache.run(Date.now());
        this.putCacheEntry.run(workspace, key, toBinary(NodeRunSchema, entry), Date.now() + Math.ceil(ttlMs));
      }),
    );
  }

  async unfinished(): Promise<string[]> {
    const rows = databaseCall(WHAT, () => this.unfinishedIds.all()) as { run_id: string }[];
    return rows.map((row) => row.run_id);
  }

  /** Stops notifying and refuses further appends; the database connection belongs to whoever opened it. */
  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
  }

  private holds(runId: string, owner: string): boolean {
    const lease = this.leaseOf.get(runId) as LeaseRow | undefined;
    return lease?.lease_owner === owner && (lease.lease_expires_ms ?? 0) > Date.now();
  }
}
