/** Quotas in bytes. */
export interface QuotaLimits {
  readonly userBytes: number;
  readonly workspaceBytes: number;
}

/** Current usage, reservations of uploads in flight included. */
export interface Usage {
  readonly userUsedBytes: number;
  readonly workspaceUsedBytes: number;
  readonly workspaceObjectCount: number;
}

/** Outcome of a reservation; on refusal, which quota would have been exceeded and by how much. */
export type Reservation =
  | { readonly granted: true }
  | { readonly granted: false; readonly scope: "user" | "workspace"; readonly usedBytes: number; readonly limitBytes: number };

/**
 * Storage accounting. Uploads reserve their size up front (atomically against both quotas, so parallel
 * uploads can never overshoot), release it on failure, and commit it to a ref on success. A ref's
 * charge is refunded at most once, however many deletes and sweeps race for it.
 */
export interface QuotaStore {
  reserve(user: string, workspace: string, bytes: number): Promise<Reservation>;
  /** Gives back bytes reserved by an upload that did not (fully) use them. */
  release(user: string, workspace: string, bytes: number): Promise<void>;
  /** Records that `refId` now holds `bytes` of `user`'s reservation and counts the object. Idempotent. */
  commit(workspace: string, refId: string, user: string, bytes: number): Promise<void>;
  /** Gives back what `refId` holds and uncounts it; 0 when it was already refunded. */
  refund(workspace: string, refId: string): Promise<number>;
  usage(user: string, workspace: string): Promise<Usage>;
  readonly limits: QuotaLimits;
  close(): Promise<void>;
}

/** Quotas in one process: the embedded default. */
export class MemoryQuotaStore implements QuotaStore {
  private readonly userUsed = new Map<string, number>();
  private readonly workspaceUsed = new Map<string, number>();
  private readonly charges = new Map<string, { user: string; bytes: number }>();
  private readonly objectCount = new Map<string, number>();

  constructor(readonly limits: QuotaLimits) {}

  async reserve(user: string, workspace: string, bytes: number): Promise<Reservation> {
    const u = this.userUsed.get(user) ?? 0;
    const w = this.workspaceUsed.get(workspace) ?? 0;
    if (u + bytes > this.limits.userBytes) {
      return { granted: false, scope: "user", usedBytes: u, limitBytes: this.limits.userBytes };
    }
    if (w + bytes > this.limits.workspaceBytes) {
      return { granted: false, scope: "workspace", usedBytes: w, limitBytes: this.limits.workspaceBytes };
    }
    this.userUsed.set(user, u + bytes);
    this.workspaceUsed.set(workspace, w + bytes);
    return { granted: true };
  }

  async release(user: string, workspace: string, bytes: number): Promise<void> {
    this.userUsed.set(user, Math.max(0, (this.userUsed.get(user) ?? 0) - bytes));
    this.workspaceUsed.set(workspace, Math.max(0, (this.workspaceUsed.get(workspace) ?? 0) - bytes));
  }

  async commit(workspace: string, refId: string, user: string, bytes: number): Promise<void> {
    const key = `${workspace}\u0000${refId}`;
    if (this.charges.has(key)) return;
    this.charges.set(key, { user, bytes });
    this.objectCount.set(workspace, (this.objectCount.get(workspace) ?? 0) + 1);
  }

  async refund(workspace: string, refId: string): Promise<number> {
    const key = `${workspace}\u0000${refId}`;
    const charge = this.charges.get(key);
    if (!charge) return 0;
    this.charges.delete(key);
    this.objectCount.set(workspace, Math.max(0, (this.objectCount.get(workspace) ?? 0) - 1));
    await this.release(charge.user, workspace, charge.bytes);
    return charge.bytes;
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
