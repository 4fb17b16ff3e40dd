import { randomBytes } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Lease, QuotaStore, Reservation } from "./quota-store.js";

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
    await this.ensureAhead(total, total);
  }

  /**
   * Makes sure at least `needed` bytes are held, holding up to `ahead` so that later calls need no
   * round trip. Near a quota the hold ahead shrinks to what is left, so an upload is refused only when
   * `needed` itself does not fit.
   */
  async ensureAhead(needed: number, ahead: number): Promise<void> {
    if (needed <= this.held && this.held > 0) {
      await this.keepAlive();
      return;
    }
    let target = Math.max(needed, ahead);
    for (;;) {
      const extra = Math.max(0, target - this.held);
      const outcome = await this.quotas.reserve(this.lease, extra, Date.now() + this.leaseMs);
      this.lastRenewMs = Date.now();
      if (outcome.granted) {
        this.held = Math.max(target, this.held);
        return;
      }
      // The refusal says how full the quota is, so the next try asks for no more than is left.
      const left = outcome.limitBytes - outcome.usedBytes;
      const smaller = Math.max(needed, Math.min(target, this.held + left));
      if (smaller >= target) throw this.exceeded(outcome, Math.max(0, needed - this.held));
      target = smaller;
    }
  }

  private exceeded(outcome: Extract<Reservation, { granted: false }>, extra: number): ConnectError {
    const who = outcome.scope === "user" ? `user ${this.lease.user}` : `workspace ${this.lease.workspace}`;
    return new ConnectError(
      `storage quota exceeded: ${who} uses ${outcome.usedBytes} of ${outcome.limitBytes} bytes and this upload needs ${extra} more; delete objects or ask for a larger quota`,
      Code.ResourceExhausted,
    );
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
