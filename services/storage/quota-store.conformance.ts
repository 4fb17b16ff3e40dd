import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Lease, QuotaLimits, QuotaStore } from "./quota-store.js";

export interface QuotaStoreFixture {
  readonly store: QuotaStore;
  dispose(): Promise<void>;
}

let leases = 0;
function lease(user: string, workspace: string): Lease {
  return { id: `lease-${++leases}`, user, workspace };
}

const LATER = Date.now() + 3_600_000;

/** The behaviour every QuotaStore backend must show; the factory builds a store with `limits`. */
export function describeQuotaStoreConformance(name: string, factory: (limits: QuotaLimits) => Promise<QuotaStoreFixture>): void {
  describe(`QuotaStore conformance: ${name}`, () => {
    let fixture: QuotaStoreFixture;
    let quotas: QuotaStore;
    beforeAll(async () => {
      fixture = await factory({ userBytes: 1000, workspaceBytes: 1500 });
      quotas = fixture.store;
    });
    afterAll(async () => fixture?.dispose());

    it("grants holds up to each quota, names the quota it refuses, and gives them back", async () => {
      const a = lease("u1", "w1");
      expect(await quotas.reserve(a, 600, LATER)).toEqual({ granted: true });
      expect(await quotas.reserve(a, 401, LATER)).toEqual({ granted: false, scope: "user", usedBytes: 600, limitBytes: 1000 });
      expect(await quotas.reserve(a, 400, LATER)).toEqual({ granted: true });
      expect(await quotas.reserve(lease("u2", "w1"), 501, LATER)).toEqual({
        granted: false,
        scope: "workspace",
        usedBytes: 1000,
        limitBytes: 1500,
      });
      await quotas.release(a.id);
      await quotas.release(a.id);
      expect(await quotas.usage("u1", "w1")).toEqual({ userUsedBytes: 0, workspaceUsedBytes: 0, workspaceObjectCount: 0 });
    });

    it("never exceeds a quota under many parallel reservations", async () => {
      const held = Array.from({ length: 200 }, () => lease("par", "w-par"));
      const results = await Promise.all(held.map((l) => quotas.reserve(l, 7, LATER)));
      const granted = results.filter((r) => r.granted).length;
      expect(granted).toBe(Math.floor(1000 / 7));
      expect((await quotas.usage("par", "w-par")).userUsedBytes).toBe(granted * 7);
      await Promise.all(held.map((l) => quotas.release(l.id)));
      expect((await quotas.usage("par", "w-par")).userUsedBytes).toBe(0);
    });

    it("commits a hold to a ref, charging the stored size once, and refunds it exactly once", async () => {
      const l = lease("u3", "w3");
      expect((await quotas.reserve(l, 500, LATER)).granted).toBe(true);
      await quotas.commit(l, "ref-1", 300);
      await quotas.commit(l, "ref-1", 300);
      expect(await quotas.usage("u3", "w3")).toEqual({ userUsedBytes: 300, workspaceUsedBytes: 300, workspaceObjectCount: 1 });
      const refunds = await Promise.all([quotas.refund("w3", "ref-1"), quotas.refund("w3", "ref-1")]);
      expect(refunds.sort()).toEqual([0, 300]);
      expect(await quotas.usage("u3", "w3")).toEqual({ userUsedBytes: 0, workspaceUsedBytes: 0, workspaceObjectCount: 0 });
      expect(await quotas.refund("w3", "never-stored")).toBe(0);
    });

    it("lists the refs it holds charges for, and no longer a refunded one", async () => {
      for (const [user, ws, ref] of [
        ["u5", "w5", "ref-a"],
        ["u5", "w5", "ref-b"],
        ["u6", "w6", "ref-a"],
      ] as const) {
        const l = lease(user, ws);
        await quotas.reserve(l, 10, LATER);
        await quotas.commit(l, ref, 10);
      }
      await quotas.refund("w5", "ref-b");
      const listed: string[] = [];
      for await (const charge of quotas.charges())
        if (charge.workspace === "w5" || charge.workspace === "w6") listed.push(`${charge.workspace}/${charge.refId}`);
      expect(listed.sort()).toEqual(["w5/ref-a", "w6/ref-a"]);
    });

    it("gives back holds whose uploader went silent, but not renewed ones", async () => {
      const now = Date.now();
      const silent = lease("u4", "w4");
      const alive = lease("u4", "w4");
      await quotas.reserve(silent, 100, now + 1000);
      await quotas.reserve(alive, 50, now + 1000);
      await quotas.renew(alive.id, now + 10_000);
      expect(await quotas.reclaimExpired(now + 5000)).toBe(1);
      expect((await quotas.usage("u4", "w4")).userUsedBytes).toBe(50);
      // A lapsed hold still commits: the bytes are stored either way.
      await quotas.commit(silent, "ref-late", 100);
      expect((await quotas.usage("u4", "w4")).userUsedBytes).toBe(150);
      await quotas.release(alive.id);
      await quotas.refund("w4", "ref-late");
      expect((await quotas.usage("u4", "w4")).userUsedBytes).toBe(0);
    });
  });
}
