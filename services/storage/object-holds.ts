import { type Hold, type HolderKind, holderKindOf, type HoldStore, isLive } from "./hold-store.js";
import { digestLockKey } from "./keys.js";
import type { KeyedLock } from "./keyed-lock.js";
import type { RefIndex, StoredRef } from "./ref-index.js";
import type { RefRemover } from "./ref-remover.js";

/** Bytes, objects and holders of one kind of holder in a workspace. */
export interface KindUsage {
  bytes: number;
  objects: number;
  holders: number;
}

/**
 * Reference-counted lifetime of stored objects: an object stays while any live hold names it and is
 * removed when the last one goes. Every hold change and every removal of one object runs under the
 * digest lock uploads take to deduplicate, so a hold, an upload finding the object by digest and a
 * release never interleave. A hold is dropped before the object is removed: a crash in between
 * leaves an unheld object, which the sweeper removes, never a held one gone.
 */
export class ObjectHolds {
  constructor(
    private readonly holds: HoldStore,
    private readonly index: RefIndex,
    private readonly remover: RefRemover,
    private readonly lock: KeyedLock,
  ) {}

  async liveHolds(workspace: string, refId: string, nowMs: number): Promise<Hold[]> {
    return (await this.holds.holdsOf(workspace, refId)).filter((hold) => isLive(hold, nowMs));
  }

  /** Takes or renews `holder`'s hold, unless the object was removed meanwhile; returns whether it is held. */
  async hold(stored: StoredRef, holder: string, expiresMs: number, nowMs: number): Promise<boolean> {
    const { ref } = stored;
    return this.lock.run(digestLockKey(ref), async () => {
      if (!(await this.index.get(ref.workspace, ref.id))) return false;
      await this.holds.add({ workspace: ref.workspace, refId: ref.id, holder, expiresMs, createdMs: nowMs });
      return true;
    });
  }

  /** Drops `holder`'s hold; removes the object if no live hold is left. Returns the bytes freed and who still holds it. */
  async release(stored: StoredRef, holder: string, nowMs: number): Promise<{ freed: number; remaining: Hold[] }> {
    const { ref } = stored;
    return this.lock.run(digestLockKey(ref), async () => {
      await this.holds.remove(ref.workspace, ref.id, holder);
      return this.removeIfUnheld(stored, nowMs);
    });
  }

  /** The sweeper's check of one object: removes it (and its lapsed holds) if no live hold is left. */
  async collect(stored: StoredRef, nowMs: number): Promise<boolean> {
    return this.lock.run(digestLockKey(stored.ref), async () => (await this.removeIfUnheld(stored, nowMs)).remaining.length === 0);
  }

  private async removeIfUnheld(stored: StoredRef, nowMs: number): Promise<{ freed: number; remaining: Hold[] }> {
    const { ref } = stored;
    const holds = await this.holds.holdsOf(ref.workspace, ref.id);
    const remaining = holds.filter((hold) => isLive(hold, nowMs));
    if (remaining.length > 0) return { freed: 0, remaining };
    const freed = await this.remover.remove(stored);
    for (const lapsed of holds) await this.holds.remove(ref.workspace, ref.id, lapsed.holder);
    return { freed, remaining };
  }

  /** The workspace's live holds by kind: each object counted once per kind, whatever number of holders. */
  async usageByKind(workspace: string, nowMs: number): Promise<Map<HolderKind, KindUsage>> {
    const objects = new Map<HolderKind, Set<string>>();
    const holders = new Map<HolderKind, Set<string>>();
    for await (const hold of this.holds.ofWorkspace(workspace)) {
      const kind = holderKindOf(hold.holder);
      if (!kind || !isLive(hold, nowMs)) continue;
      objects.set(kind, (objects.get(kind) ?? new Set()).add(hold.refId));
      holders.set(kind, (holders.get(kind) ?? new Set()).add(hold.holder));
    }
    const usage = new Map<HolderKind, KindUsage>();
    for (const [kind, refIds] of objects) {
      let bytes = 0;
      for (const refId of refIds) bytes += Number((await this.index.get(workspace, refId))?.ref.sizeBytes ?? 0n);
      usage.set(kind, { bytes, objects: refIds.size, holders: holders.get(kind)?.size ?? 0 });
    }
    return usage;
  }
}
