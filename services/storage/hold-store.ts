import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { MediaRef } from "../../gen/mentatlab/v1/common_pb.js";
import type { StoredRef } from "./ref-index.js";

/**
 * One holder's hold on one stored object (a ref of a workspace): while any live hold names an object,
 * it is never deleted. Holders are `upload:<ref id>` (the upload itself), `run:<run id>` and
 * `cache:<key>`.
 */
export interface Hold {
  readonly workspace: string;
  readonly refId: string;
  readonly holder: string;
  /** When the hold lapses on its own (an upload's retention, a cache entry's TTL); 0 lasts until released. */
  readonly expiresMs: number;
  /** When it was first taken, so the sweeper leaves holds of uploads still registering alone. */
  readonly createdMs: number;
}

export type HolderKind = "upload" | "run" | "cache";

export function holderKindOf(holder: string): HolderKind | undefined {
  const kind = holder.slice(0, holder.indexOf(":"));
  return kind === "upload" || kind === "run" || kind === "cache" ? kind : undefined;
}

export function uploadHolder(refId: string): string {
  return `upload:${refId}`;
}

export function isLive(hold: Pick<Hold, "expiresMs">, nowMs: number): boolean {
  return hold.expiresMs === 0 || hold.expiresMs > nowMs;
}

/** The durable record of holds, beside the ref index (SQLite embedded, Redis distributed, memory in tests). */
export interface HoldStore {
  /** Takes or renews a hold; a renewal keeps its creation time and moves its expiry. */
  add(hold: Hold): Promise<void>;
  /** Drops a hold; false when there was none. */
  remove(workspace: string, refId: string, holder: string): Promise<boolean>;
  /** Every hold on an object, lapsed ones included. */
  holdsOf(workspace: string, refId: string): Promise<Hold[]>;
  /** Every hold of a workspace, for usage by holder. */
  ofWorkspace(workspace: string): AsyncIterable<Hold>;
  /** Every hold, for the sweeper. */
  all(): AsyncIterable<Hold>;
  /**
   * Gives every ref stored before holds existed its upload hold, once per store, so the first sweep
   * does not take them for unheld objects.
   */
  adoptOnce(refs: AsyncIterable<StoredRef>, nowMs: number): Promise<void>;
}

/** The hold an upload keeps on its object: until the object's own expiry (its retention). */
export function uploadHoldOf(ref: MediaRef, nowMs: number): Hold {
  const expiresMs = ref.expiresAt ? timestampMs(ref.expiresAt) : 0;
  return { workspace: ref.workspace, refId: ref.id, holder: uploadHolder(ref.id), expiresMs, createdMs: nowMs };
}

function holdKey(workspace: string, refId: string): string {
  return `${workspace}\u0000${refId}`;
}

/** Holds in process memory: tests and the no-database configuration. */
export class MemoryHoldStore implements HoldStore {
  private readonly byObject = new Map<string, Map<string, Hold>>();
  private adopted = false;

  async add(hold: Hold): Promise<void> {
    const key = holdKey(hold.workspace, hold.refId);
    const holders = this.byObject.get(key) ?? new Map<string, Hold>();
    const previous = holders.get(hold.holder);
    holders.set(hold.holder, { ...hold, createdMs: previous?.createdMs ?? hold.createdMs });
    this.byObject.set(key, holders);
  }

  async remove(workspace: string, refId: string, holder: string): Promise<boolean> {
    const key = holdKey(workspace, refId);
    const holders = this.byObject.get(key);
    const removed = holders?.delete(holder) ?? false;
    if (holders?.size === 0) this.byObject.delete(key);
    return removed;
  }

  async holdsOf(workspace: string, refId: string): Promise<Hold[]> {
    return [...(this.byObject.get(holdKey(workspace, refId))?.values() ?? [])];
  }

  async *ofWorkspace(workspace: string): AsyncIterable<Hold> {
    for await (const hold of this.all()) if (hold.workspace === workspace) yield hold;
  }

  async *all(): AsyncIterable<Hold> {
    for (const holders of [...this.byObject.values()]) yield* [...holders.values()];
  }

  async adoptOnce(refs: AsyncIterable<StoredRef>, nowMs: number): Promise<void> {
    if (this.adopted) return;
    for await (const stored of refs) await this.add(uploadHoldOf(stored.ref, nowMs));
    this.adopted = true;
  }
}
