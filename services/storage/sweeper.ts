import type { BlobStore } from "./blob-store.js";
import { type HoldStore, isLive } from "./hold-store.js";
import type { ObjectHolds } from "./object-holds.js";
import type { QuotaStore } from "./quota-store.js";
import type { RefIndex } from "./ref-index.js";
import type { ResumableUploads } from "./resumable-uploads.js";

/** What one sweep removed. */
export interface SweepResult {
  /** Objects no live hold named any more (past their retention, released, or left by a crash). */
  readonly expiredObjects: number;
  /** Holds past their expiry, or naming a ref never registered, dropped. */
  readonly droppedHolds: number;
  readonly abandonedUploads: number;
  /** Quota holds of uploads that stopped without finishing or failing (a crashed replica). */
  readonly reclaimedLeases: number;
  /** Bytes no ref points at (left by a crash between storing and registering), past the grace period. */
  readonly orphanedBlobs: number;
  /** Temp files of writes a crash interrupted (file backend), past the grace period. */
  readonly staleTemporaries: number;
  /** Quota charges for refs never registered (a crash between charging and registering), refunded. */
  readonly orphanedCharges: number;
}

const OBJECT_PREFIXES = ["media/", "temp/"];

/** Unreferenced blobs and temp files younger than this may belong to an upload still under way. */
const ORPHAN_GRACE_MS = 60 * 60 * 1000;

/**
 * Removes objects no live hold names any more (giving their quota back), dead holds, abandoned resumable uploads, and temp files of
 * interrupted writes. The file backend has no lifecycle rules, so this is its only expiry; on S3 it
 * enforces the sub-day `temp` TTL that lifecycle rules (whole days) cannot, and keeps the index and
 * quotas in step with what S3 expires.
 */
export class Sweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<SweepResult> | undefined;
  // Charges without a ref at the last sweep. An upload charges its ref a moment before registering
  // it, so only a charge still without a ref one whole sweep later is refunded.
  private chargesWithoutRef = new Set<string>();

  constructor(
    private readonly store: BlobStore,
    private readonly index: RefIndex,
    private readonly uploads: ResumableUploads,
    private readonly quotas: QuotaStore,
    private readonly holds: HoldStore,
    private readonly objects: ObjectHolds,
  ) {}

  async sweep(now = Date.now()): Promise<SweepResult> {
    // One sweep at a time: overlapping ones would only race for the same documents.
    this.running ??= this.sweepOnce(now).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async sweepOnce(now: number): Promise<SweepResult> {
    let expiredObjects = 0;
    const live = new Set<string>();
    const registered = new Set<string>();
    for await (const stored of this.index.all()) {
      registered.add(chargeKey(stored.ref));
      if (!(await this.objects.collect(stored, now))) {
        live.add(stored.blobKey);
        continue;
      }
      expiredObjects += 1;
    }
    const droppedHolds = await this.dropDeadHolds(now);
    const abandonedUploads = await this.uploads.sweep(now);
    let orphanedBlobs = 0;
    for (const prefix of OBJECT_PREFIXES) {
      for await (const info of this.store.list(prefix)) {
        if (live.has(info.key) || info.lastModified.getTime() > now - ORPHAN_GRACE_MS) continue;
        await this.store.delete(info.key);
        orphanedBlobs += 1;
      }
    }
    const staleTemporaries = (await this.store.removeStaleTemporaries?.(new Date(now - ORPHAN_GRACE_MS))) ?? 0;
    const reclaimedLeases = await this.quotas.reclaimExpired(now);
    const orphanedCharges = await this.refundChargesWithoutRef(registered);
    return { expiredObjects, droppedHolds, abandonedUploads, reclaimedLeases, orphanedBlobs, staleTemporaries, orphanedCharges };
  }

  /** Lapsed holds, and holds an upload cut short by a crash took before registering its ref. */
  private async dropDeadHolds(now: number): Promise<number> {
    let dropped = 0;
    for await (const hold of this.holds.all()) {
      const dead = !isLive(hold, now) || (hold.createdMs < now - ORPHAN_GRACE_MS && !(await this.index.get(hold.workspace, hold.refId)));
      if (dead && (await this.holds.remove(hold.workspace, hold.refId, hold.holder))) dropped += 1;
    }
    return dropped;
  }

  private async refundChargesWithoutRef(registered: ReadonlySet<string>): Promise<number> {
    const withoutRef = new Set<string>();
    let refunded = 0;
    for await (const charge of this.quotas.charges()) {
      const key = chargeKey({ workspace: charge.workspace, id: charge.refId });
      if (registered.has(key)) continue;
      if (!this.chargesWithoutRef.has(key)) {
        withoutRef.add(key);
        continue;
      }
      // Registered since this sweep walked the index: an upload that finished meanwhile.
      if (await this.index.get(charge.workspace, charge.refId)) continue;
      if ((await this.quotas.refund(charge.workspace, charge.refId)) > 0) refunded += 1;
    }
    this.chargesWithoutRef = withoutRef;
    return refunded;
  }

  /** Sweeps every `intervalMs` until `stop()`; errors are reported and the next sweep tries again. */
  start(intervalMs: number, onError: (err: unknown) => void): void {
    if (intervalMs <= 0 || this.timer) return;
    this.timer = setInterval(() => void this.sweep().catch(onError), intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }
}

function chargeKey(ref: { readonly workspace: string; readonly id: string }): string {
  return `${ref.workspace}\u0000${ref.id}`;
}
