import type { BlobStore } from "./blob-store.js";
import type { QuotaStore } from "./quota-store.js";
import type { RefCache } from "./ref-cache.js";
import type { RefIndex, StoredRef } from "./ref-index.js";

/** Called between the steps of a removal; tests throw from it to stop a removal there, as a crash would. */
export type CrashPoint = (step: "unheld" | "unindexed" | "refunded") => Promise<void>;

/**
 * Removes a ref with everything hanging off it: index entries, cache entries, quota charge, bytes. The
 * ref goes first, so a removal cut short leaves a charge without a ref or bytes without a ref, both of
 * which the sweeper reclaims.
 */
export class RefRemover {
  constructor(
    private readonly store: BlobStore,
    private readonly index: RefIndex,
    private readonly refs: RefCache,
    private readonly quotas: QuotaStore,
    private readonly crashPoint: CrashPoint = async () => {},
  ) {}

  /** Returns the bytes given back to the quota (0 if another remover got there first). */
  async remove(stored: StoredRef): Promise<number> {
    const { ref } = stored;
    await this.crashPoint("unheld");
    await this.index.delete(stored);
    await this.refs.invalidate(ref.workspace, ref.id);
    await this.crashPoint("unindexed");
    const freed = await this.quotas.refund(ref.workspace, ref.id);
    await this.crashPoint("refunded");
    await this.store.delete(stored.blobKey);
    return freed;
  }
}
