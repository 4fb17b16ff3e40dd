import { randomBytes } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Lease, QuotaStore } from "./quota-store.js";

/** A streamed upload's quota hold lapses this long after its last chunk (the uploader crashed). */
export const STREAM_LEASE_MS = 10 * 60 * 1000;

/**
 * Space held for one upload in flight: grown as bytes arrive, then committed to a ref or released.
 * The lease behind it lapses `leaseMs` after the last sign of progress, so a crashed uploader's space
 * comes back on the next sweep.
 */
export class QuotaReservation {
  private lastRenewMs = Date.now();

  constructor(
    private readonly quotas: QuotaStore,
    readonly lease: Lease,
    private readonly leaseMs: number,
    private held = 0,
  ) {}

  static newLeaseId(): string {
    return `l_${randomBytes(16).toString("base64url")}`;
  }

  get heldBytes(): number {
    return this.held;
  }

  /** Makes sure at least `total` bytes are held; RESOURCE_EXHAUSTED with usage and limit when over quota. */
  async ensure(total: number): Promise<void> {
    if (total <= this.held && this.held > 0) return;
    const extra = Math.max(0, total - this.held);
    const outcome = await this.quotas.reserve(this.lease, extra, Date.now() + this.leaseMs);
    this.lastRenewMs = Date.now();
    if (!outcome.granted) {
      const who = outcome.scope === "user" ? `user ${this.lease.user}` : `workspace ${this.lease.workspace}`;
      throw new ConnectError(
        `storage quota exceeded: ${who} uses ${outcome.usedBytes} of ${outcome.limitBytes} bytes and this upload needs ${extra} more; delete objects or ask for a larger quota`,
        Code.ResourceExhausted,
      );
    }
    this.held = Math.max(total, this.held);
  }

  /** Pushes the lease's expiry forward, at most every third of its length. */
  async keepAlive(): Promise<void> {
    const now = Date.now();
    if (now - this.lastRenewMs < this.leaseMs / 3) return;
    this.lastRenewMs = now;
    await this.quotas.renew(this.lease.id, now + this.leaseMs);
  }

  /** Charges `bytes` to `refId` and gives the rest of the hold back. */
  async commit(refId: string, bytes: number): Promise<void> {
    await this.quotas.commit(this.lease, refId, bytes);
    this.held = 0;
  }

  /** Gives everything back (the upload failed or was deduplicated). */
  async release(): Promise<void> {
    await this.quotas.release(this.lease.id);
    this.held = 0;
  }
}
