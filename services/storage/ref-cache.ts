import { LRUCache } from "lru-cache";
import type { StorageMetrics } from "./metrics.js";
import { decodeStoredRef, encodeStoredRef, type RefIndex, type StoredRef } from "./ref-index.js";

/** A shared second-level cache of encoded refs (Redis in distributed mode). */
export interface RefCacheL2 {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string, ttlSeconds: number): Promise<void>;
  delete(key: string): Promise<void>;
}

export interface RefCacheOptions {
  readonly l1MaxEntries: number;
  readonly l1TtlMs: number;
  readonly l2TtlSeconds: number;
}

/**
 * Ref lookups through L1 (in-process LRU, short TTL) then L2 (shared, longer TTL) then the index.
 * Refs are immutable, so caching them is safe; a delete invalidates this replica's L1 and the shared L2,
 * while other replicas' L1 may answer for up to the L1 TTL (their reads of the bytes then find nothing).
 */
export class RefCache {
  private readonly l1: LRUCache<string, StoredRef>;

  constructor(
    private readonly index: RefIndex,
    private readonly l2: RefCacheL2 | undefined,
    private readonly options: RefCacheOptions,
    private readonly metrics: StorageMetrics,
  ) {
    this.l1 = new LRUCache({ max: Math.max(1, options.l1MaxEntries), ttl: Math.max(1, options.l1TtlMs) });
  }

  private static key(workspace: string, refId: string): string {
    return `${workspace}\u0000${refId}`;
  }

  async get(workspace: string, refId: string): Promise<StoredRef | undefined> {
    this.metrics.referenceCacheLookups += 1;
    const key = RefCache.key(workspace, refId);
    const inL1 = this.l1.get(key);
    if (inL1) {
      this.metrics.referenceCacheHits += 1;
      return inL1;
    }
    const inL2 = await this.l2?.get(key);
    if (inL2 !== undefined) {
      this.metrics.referenceCacheHits += 1;
      const stored = decodeStoredRef(inL2);
      this.l1.set(key, stored);
      return stored;
    }
    const stored = await this.index.get(workspace, refId);
    if (stored) {
      this.l1.set(key, stored);
      await this.l2?.set(key, encodeStoredRef(stored), this.options.l2TtlSeconds);
    }
    return stored;
  }

  async invalidate(workspace: string, refId: string): Promise<void> {
    const key = RefCache.key(workspace, refId);
    this.l1.delete(key);
    await this.l2?.delete(key);
  }
}
