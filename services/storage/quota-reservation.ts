import { Code, ConnectError } from "@connectrpc/connect";
import type { QuotaStore } from "./quota-store.js";

/** Space held for one upload in flight: grown as bytes arrive, then committed to a ref or released. */
export class QuotaReservation {
  constructor(
    private readonly quotas: QuotaStore,
    readonly user: string,
    readonly workspace: string,
    private held = 0,
  ) {}

  get heldBytes(): number {
    return this.held;
  }

  /** Makes sure at least `total` bytes are held; RESOURCE_EXHAUSTED with usage and limit when over quota. */
  async ensure(total: number): Promise<void> {
    if (total <= this.held) return;
    const extra = total - this.held;
    const outcome = await this.quotas.reserve(this.user, this.workspace, extra);
    if (!outcome.granted) {
      const who = outcome.scope === "user" ? `user ${this.user}` : `workspace ${this.workspace}`;
      throw new ConnectError(
        `storage quota exceeded: ${who} uses ${outcome.usedBytes} of ${outcome.limitBytes} bytes and this upload needs ${extra} more; delete objects or ask for a larger quota`,
        Code.ResourceExhausted,
      );
    }
    this.held = total;
  }

  /** Charges `bytes` of the held space to `refId` and gives the rest back. */
  async commit(refId: string, bytes: number): Promise<void> {
    await this.ensure(bytes);
    await this.quotas.commit(this.workspace, refId, this.user, bytes);
    await this.releaseAbove(bytes);
  }

  /** Gives everything back (the upload failed or was deduplicated). */
  async release(): Promise<void> {
    await this.releaseAbove(0);
  }

  private async releaseAbove(keep: number): Promise<void> {
    const extra = this.held - keep;
    if (extra > 0) await this.quotas.release(this.user, this.workspace, extra);
    this.held = keep;
  }
}
