import type { BlobStore } from "./blob-store.js";
import type { QuotaStore } from "./quota-store.js";
import type { RefCache } from "./ref-cache.js";
import type { RefIndex, StoredRef } from "./ref-index.js";

/** Removes a ref with everything hanging off it: index entries, cache entries, quota charge, bytes. */
export class RefRemover {
  constructor(
    private readonly store: BlobStore,
    private readonly index: RefIndex,
    private readonly refs: RefCache,
    private readonly quotas: QuotaStore,
  ) {}

  /** Returns the bytes given back to the quota (0 if another remover got there first). */
  async remove(stored: StoredRef): Promise<number> {
    const { ref } = stored;
    await this.index.delete(stored);
    await this.refs.invalidate(ref.workspace, ref.id);
    const freed = await this.quotas.refund(ref.workspace, ref.id);
    await this.store.delete(stored.blobKey);
    return freed;
  }
}
