/** Quotas in bytes. */
export interface QuotaLimits {
  readonly userBytes: number;
  readonly workspaceBytes: number;
}

/** A ref a quota charge is held for. */
export interface ChargedRef {
  readonly workspace: string;
  readonly refId: string;
}

/** Current usage, space held by uploads in flight included. */
export interface Usage {
  readonly userUsedBytes: number;
  readonly workspaceUsedBytes: number;
  readonly workspaceObjectCount: number;
}

/** Outcome of a reservation; on refusal, which quota would have been exceeded and how full it is. */
export type Reservation =
  { readonly granted: true } | { readonly granted: false; readonly scope: "user" | "workspace"; readonly usedBytes: number; readonly limitBytes: number };

/** Space one upload holds. A lease that outlives its expiry (a crashed uploader) is given back by the sweeper. */
export interface Lease {
  readonly id: string;
  readonly user: string;
  readonly workspace: string;
}

/**
 * Storage accounting. Uploads hold their size in a lease (reserved atomically against both quotas, so
 * parallel uploads never overshoot), then either commit it to a ref or release it. A ref's charge is
 * refunded at most once, however many deletes and sweeps race for it.
 */
export interface QuotaStore {
  readonly limits: QuotaLimits;
  /** Adds `bytes` to the lease's hold if both quotas allow, and sets its expiry. */
  reserve(lease: Lease, bytes: number, expiresAtMs: number): Promise<Reservation>;
  /** Moves an ongoing lease's expiry. */
  renew(leaseId: string, expiresAtMs: number): Promise<void>;
  /**
   * Ends the lease and charges `bytes` to `refId` instead, counting the object; idempotent per ref.
   * Charges even if the lease had already lapsed: the bytes are stored either way.
   */
  commit(lease: Lease, refId: string, bytes: number): Promise<void>;
  /** Ends the lease, giving back all it held; ending an ended lease does nothing. */
  release(leaseId: string): Promise<void>;
  /** Ends every lease past its expiry at `nowMs`; returns how many. */
  reclaimExpired(nowMs: number): Promise<number>;
  /** Gives back what `refId` holds and uncounts it; 0 when it was already refunded. */
  refund(workspace: string, refId: string): Promise<number>;
  /** Every ref charged for, so the sweeper can refund charges whose ref was never registered (a crash). */
  charges(): AsyncIterable<ChargedRef>;
  usage(user: string, workspace: string): Promise<Usage>;
  close(): Promise<void>;
}

interface HeldLease extends Lease {
  bytes: number;
  expiresAtMs: number;
}

/** Quotas in one process: the embedded default. */
export class MemoryQuotaStore implements QuotaStore {
  private readonly userUsed = new Map<string, number>();
  private readonly workspaceUsed = new Map<string, number>();
  private readonly leases = new Map<string, HeldLease>();
  private readonly charged = new Map<string, { user: string; bytes: number }>();
  private readonly objectCount = new Map<string, number>();

  constructor(readonly limits: QuotaLimits) {}

  private add(user: string, workspace: string, bytes: number): void {
    this.userUsed.set(user, Math.max(0, (this.userUsed.get(user) ?? 0) + bytes));
    this.workspaceUsed.set(workspace, Math.max(0, (this.workspaceUsed.get(workspace) ?? 0) + bytes));
  }

  async reserve(lease: Lease, bytes: number, expiresAtMs: number): Promise<Reservation> {
    const u = this.userUsed.get(lease.user) ?? 0;
    const w = this.workspaceUsed.get(lease.workspace) ?? 0;
    if (u + bytes > this.limits.userBytes) {
      return { granted: false, scope: "user", usedBytes: u, limitBytes: this.limits.userBytes };
    }
    if (w + bytes > this.limits.workspaceBytes) {
      return { granted: false, scope: "workspace", usedBytes: w, limitBytes: this.limits.workspaceBytes };
    }
    this.add(lease.user, lease.workspace, bytes);
    const held = this.leases.get(lease.id);
    this.leases.set(lease.id, { id: lease.id, user: lease.user, workspace: lease.workspace, bytes: (held?.bytes ?? 0) + bytes, expiresAtMs });
    return { granted: true };
  }

  async renew(leaseId: string, expiresAtMs: number): Promise<void> {
    const held = this.leases.get(leaseId);
    if (held) held.expiresAtMs = expiresAtMs;
  }

  async commit(lease: Lease, refId: string, bytes: number): Promise<void> {
    await this.release(lease.id);
    const key = `${lease.workspace}\u0000${refId}`;
    if (this.charged.has(key)) return;
    this.charged.set(key, { user: lease.user, bytes });
    this.objectCount.set(lease.workspace, (this.objectCount.get(lease.workspace) ?? 0) + 1);
    this.add(lease.user, lease.workspace, bytes);
  }

  async release(leaseId: string): Promise<void> {
    const held = this.leases.get(leaseId);
    if (!held) return;
    this.leases.delete(leaseId);
    this.add(held.user, held.workspace, -held.bytes);
  }

  async reclaimExpired(nowMs: number): Promise<number> {
    const expired = [...this.leases.values()].filter((l) => l.expiresAtMs <= nowMs);
    for (const lease of expired) await this.release(lease.id);
    return expired.length;
  }

  async refund(workspace: string, refId: string): Promise<number> {
    const key = `${workspace}\u0000${refId}`;
    const charge = this.charged.get(key);
    if (!charge) return 0;
    this.charged.delete(key);
    this.objectCount.set(workspace, Math.max(0, (this.objectCount.get(workspace) ?? 0) - 1));
    this.add(charge.user, workspace, -charge.bytes);
    return charge.bytes;
  }

  async *charges(): AsyncIterable<ChargedRef> {
    for (const key of [...this.charged.keys()]) {
      const [workspace = "", refId = ""] = key.split("\u0000");
      yield { workspace, refId };
    }
  }

  async usage(user: string, workspace: string): Promise<Usage> {
    return {
      userUsedBytes: this.userUsed.get(user) ?? 0,
      workspaceUsedBytes: this.workspaceUsed.get(workspace) ?? 0,
      workspaceObjectCount: this.objectCount.get(workspace) ?? 0,
    };
  }

  async close(): Promise<void> {}
}
