import type { DatabaseSync, StatementSync } from "node:sqlite";
import { databaseCall, inTransaction, once } from "../shared/sqlite.js";
import { isExpired } from "./media-listing.js";
import type { ChargedRef, Lease, QuotaLimits, QuotaStore, Reservation, Usage } from "./quota-store.js";
import type { StoredRef } from "./ref-index.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS quota_used (
  scope TEXT NOT NULL CHECK (scope IN ('user', 'workspace')),
  name TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  PRIMARY KEY (scope, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS quota_leases (
  id TEXT PRIMARY KEY,
  user TEXT NOT NULL,
  workspace TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS quota_leases_by_expiry ON quota_leases (expires_at_ms);
CREATE TABLE IF NOT EXISTS quota_charges (
  workspace TEXT NOT NULL,
  ref_id TEXT NOT NULL,
  user TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  PRIMARY KEY (workspace, ref_id)
) WITHOUT ROWID;
`;

const WHAT = "the quota database";
/** charges() reads this many per query, so a sweep that refunds as it goes never holds a cursor open. */
const CHARGES_PAGE = 500;

interface LeaseRow {
  user: string;
  workspace: string;
  bytes: number;
}

/**
 * Quotas in the embedded database (the embedded default): usage, holds and per-ref charges survive a
 * restart. Each change is one write transaction, so reservations from any connection to the file see
 * one consistent usage and never overshoot a quota together.
 */
export class SqliteQuotaStore implements QuotaStore {
  private readonly used: StatementSync;
  private readonly addUsed: StatementSync;
  private readonly leaseOf: StatementSync;
  private readonly growLease: StatementSync;
  private readonly renewLease: StatementSync;
  private readonly dropLease: StatementSync;
  private readonly expiredLeases: StatementSync;
  private readonly chargeOf: StatementSync;
  private readonly addCharge: StatementSync;
  private readonly dropCharge: StatementSync;
  private readonly objectCount: StatementSync;
  private readonly chargesAfter: StatementSync;

  constructor(
    private readonly db: DatabaseSync,
    readonly limits: QuotaLimits,
  ) {
    databaseCall(WHAT, () => db.exec(SCHEMA));
    this.used = db.prepare("SELECT bytes FROM quota_used WHERE scope = ? AND name = ?");
    this.addUsed = db.prepare("INSERT INTO quota_used (scope, name, bytes) VALUES (?1, ?2, max(0, ?3)) ON CONFLICT DO UPDATE SET bytes = max(0, bytes + ?3)");
    this.leaseOf = db.prepare("SELECT user, workspace, bytes FROM quota_leases WHERE id = ?");
    this.growLease = db.prepare(
      "INSERT INTO quota_leases (id, user, workspace, bytes, expires_at_ms) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO UPDATE SET bytes = bytes + ?4, expires_at_ms = ?5",
    );
    this.renewLease = db.prepare("UPDATE quota_leases SET expires_at_ms = ? WHERE id = ?");
    this.dropLease = db.prepare("DELETE FROM quota_leases WHERE id = ?");
    this.expiredLeases = db.prepare("SELECT id FROM quota_leases WHERE expires_at_ms <= ?");
    this.chargeOf = db.prepare("SELECT user, bytes FROM quota_charges WHERE workspace = ? AND ref_id = ?");
    this.addCharge = db.prepare("INSERT INTO quota_charges (workspace, ref_id, user, bytes) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING");
    this.dropCharge = db.prepare("DELETE FROM quota_charges WHERE workspace = ? AND ref_id = ?");
    this.objectCount = db.prepare("SELECT count(*) AS n FROM quota_charges WHERE workspace = ?");
    this.chargesAfter = db.prepare("SELECT workspace, ref_id FROM quota_charges WHERE (workspace, ref_id) > (?, ?) ORDER BY workspace, ref_id LIMIT ?");
  }

  private usedBy(scope: "user" | "workspace", name: string): number {
    const row = this.used.get(scope, name) as { bytes: number } | undefined;
    return row?.bytes ?? 0;
  }

  private add(user: string, workspace: string, bytes: number): void {
    this.addUsed.run("user", user, bytes);
    this.addUsed.run("workspace", workspace, bytes);
  }

  /** Ends a lease inside the caller's transaction, giving back what it held. */
  private endLease(leaseId: string): void {
    const held = this.leaseOf.get(leaseId) as LeaseRow | undefined;
    if (!held) return;
    this.dropLease.run(leaseId);
    this.add(held.user, held.workspace, -held.bytes);
  }

  async reserve(lease: Lease, bytes: number, expiresAtMs: number): Promise<Reservation> {
    return databaseCall(WHAT, () =>
      inTransaction(this.db, (): Reservation => {
        const u = this.usedBy("user", lease.user);
        const w = this.usedBy("workspace", lease.workspace);
        if (u + bytes > this.limits.userBytes) return { granted: false, scope: "user", usedBytes: u, limitBytes: this.limits.userBytes };
        if (w + bytes > this.limits.workspaceBytes) {
          return { granted: false, scope: "workspace", usedBytes: w, limitBytes: this.limits.workspaceBytes };
        }
        this.add(lease.user, lease.workspace, bytes);
        this.growLease.run(lease.id, lease.user, lease.workspace, bytes, Math.round(expiresAtMs));
        return { granted: true };
      }),
    );
  }

  async renew(leaseId: string, expiresAtMs: number): Promise<void> {
    databaseCall(WHAT, () => this.renewLease.run(Math.round(expiresAtMs), leaseId));
  }

  async commit(lease: Lease, refId: string, bytes: number): Promise<void> {
    databaseCall(WHAT, () =>
      inTransaction(this.db, () => {
        this.endLease(lease.id);
        if (this.addCharge.run(lease.workspace, refId, lease.user, bytes).changes === 1) this.add(lease.user, lease.workspace, bytes);
      }),
    );
  }

  async release(leaseId: string): Promise<void> {
    databaseCall(WHAT, () => inTransaction(this.db, () => this.endLease(leaseId)));
  }

  async reclaimExpired(nowMs: number): Promise<number> {
    return databaseCall(WHAT, () =>
      inTransaction(this.db, () => {
        const expired = this.expiredLeases.all(Math.round(nowMs)) as { id: string }[];
        for (const { id } of expired) this.endLease(id);
        return expired.length;
      }),
    );
  }

  async refund(workspace: string, refId: string): Promise<number> {
    return databaseCall(WHAT, () =>
      inTransaction(this.db, () => {
        const charge = this.chargeOf.get(workspace, refId) as { user: string; bytes: number } | undefined;
        if (!charge) return 0;
        this.dropCharge.run(workspace, refId);
        this.add(charge.user, workspace, -charge.bytes);
        return charge.bytes;
      }),
    );
  }

  /**
   * Charges every live ref the index holds, once per database: objects stored before quotas were kept
   * here (in memory, then lost) count again. Charging a ref twice does nothing, so a repeat is harmless.
   */
  async chargeExisting(refs: AsyncIterable<StoredRef>, nowMs = Date.now()): Promise<void> {
    await once(this.db, "quota: charge stored refs", async () => {
      for await (const { ref } of refs) {
        if (isExpired(ref, nowMs)) continue;
        await this.commit({ id: `import_${ref.id}`, user: ref.owner, workspace: ref.workspace }, ref.id, Number(ref.sizeBytes));
      }
    });
  }

  async *charges(): AsyncIterable<ChargedRef> {
    let after = { workspace: "", refId: "" };
    for (;;) {
      const rows = databaseCall(WHAT, () => this.chargesAfter.all(after.workspace, after.refId, CHARGES_PAGE)) as { workspace: string; ref_id: string }[];
      for (const row of rows) yield { workspace: row.workspace, refId: row.ref_id };
      const last = rows.at(-1);
      if (!last || rows.length < CHARGES_PAGE) return;
      after = { workspace: last.workspace, refId: last.ref_id };
    }
  }

  async usage(user: string, workspace: string): Promise<Usage> {
    return databaseCall(WHAT, () => ({
      userUsedBytes: this.usedBy("user", user),
      workspaceUsedBytes: this.usedBy("workspace", workspace),
      workspaceObjectCount: (this.objectCount.get(workspace) as { n: number }).n,
    }));
  }

  /** The database connection belongs to whoever opened it. */
  async close(): Promise<void> {}
}
