import type { StorageMetrics } from "./metrics.js";
import type { ChargedRef, Lease, QuotaLimits, QuotaStore, Reservation, Usage } from "./quota-store.js";

/**
 * A quota store that keeps `StorageMetrics.workspaceUsedBytes` current: after every change this
 * process makes, it reads the workspace's usage back from the store, so with a shared (Redis) store
 * the gauge shows the total across replicas, not this process's share.
 */
export class MeteredQuotaStore implements QuotaStore {
  constructor(
    private readonly inner: QuotaStore,
    private readonly metrics: StorageMetrics,
  ) {
    metrics.workspaceQuotaBytes = inner.limits.workspaceBytes;
  }

  get limits(): QuotaLimits {
    return this.inner.limits;
  }

  reserve(lease: Lease, bytes: number, expiresAtMs: number): Promise<Reservation> {
    return this.inner.reserve(lease, bytes, expiresAtMs);
  }

  renew(leaseId: string, expiresAtMs: number): Promise<void> {
    return this.inner.renew(leaseId, expiresAtMs);
  }

  async commit(lease: Lease, refId: string, bytes: number): Promise<void> {
    await this.inner.commit(lease, refId, bytes);
    await this.refresh(lease.workspace);
  }

  async release(leaseId: string): Promise<void> {
    await this.inner.release(leaseId);
    // The lease's workspace is not known here; releases are rare (abandoned uploads).
    await this.refreshAll();
  }

  async reclaimExpired(nowMs: number): Promise<number> {
    const reclaimed = await this.inner.reclaimExpired(nowMs);
    if (reclaimed > 0) await this.refreshAll();
    return reclaimed;
  }

  async refund(workspace: string, refId: string): Promise<number> {
    const freed = await this.inner.refund(workspace, refId);
    if (freed > 0) await this.refresh(workspace);
    return freed;
  }

  charges(): AsyncIterable<ChargedRef> {
    return this.inner.charges();
  }

  async usage(user: string, workspace: string): Promise<Usage> {
    const usage = await this.inner.usage(user, workspace);
    this.metrics.workspaceUsedBytes.set(workspace, usage.workspaceUsedBytes);
    return usage;
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private async refresh(workspace: string): Promise<void> {
    try {
      // Workspace usage does not depend on the user; the empty user's counter is read and ignored.
      await this.usage("", workspace);
    } catch {
      // The change itself succeeded; a stale gauge is better than failing the caller's request.
    }
  }

  private async refreshAll(): Promise<void> {
    for (const workspace of [...this.metrics.workspaceUsedBytes.keys()]) await this.refresh(workspace);
  }
}
