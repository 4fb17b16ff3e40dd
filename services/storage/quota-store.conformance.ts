import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { QuotaLimits, QuotaStore } from "./quota-store.js";

export interface QuotaStoreFixture {
  readonly store: QuotaStore;
  dispose(): Promise<void>;
}

/** The behaviour every QuotaStore backend must show; the factory builds a store with `limits`. */
export function describeQuotaStoreConformance(
  name: string,
  factory: (limits: QuotaLimits) => Promise<QuotaStoreFixture>,
): void {
  describe(`QuotaStore conformance: ${name}`, () => {
    let fixture: QuotaStoreFixture;
    let quotas: QuotaStore;
    beforeAll(async () => {
      fixture = await factory({ userBytes: 1000, workspaceBytes: 1500 });
      quotas = fixture.store;
    });
    afterAll(async () => fixture?.dispose());

    it("grants reservations up to the user quota and names the quota it refuses", async () => {
      expect(await quotas.reserve("u1", "w1", 600)).toEqual({ granted: true });
      expect(await quotas.reserve("u1", "w1", 401)).toEqual({
        granted: false,
        scope: "user",
        usedBytes: 600,
        limitBytes: 1000,
      });
      expect(await quotas.reserve("u1", "w1", 400)).toEqual({ granted: true });
      expect(await quotas.reserve("u2", "w1", 501)).toEqual({
        granted: false,
        scope: "workspace",
        usedBytes: 1000,
        limitBytes: 1500,
      });
      await quotas.release("u1", "w1", 1000);
      expect(await quotas.usage("u1", "w1")).toEqual({ userUsedBytes: 0, workspaceUsedBytes: 0, workspaceObjectCount: 0 });
    });

    it("never exceeds a quota under many parallel reservations", async () => {
      const results = await Promise.all(Array.from({ length: 200 }, () => quotas.reserve("par", "w-par", 7)));
      const granted = results.filter((r) => r.granted).length;
      expect(granted).toBe(Math.floor(1000 / 7));
      expect((await quotas.usage("par", "w-par")).userUsedBytes).toBe(granted * 7);
      await quotas.release("par", "w-par", granted * 7);
    });

    it("commits a reservation to a ref and refunds it exactly once", async () => {
      expect((await quotas.reserve("u3", "w3", 300)).granted).toBe(true);
      await quotas.commit("w3", "ref-1", "u3", 300);
      await quotas.commit("w3", "ref-1", "u3", 300);
      expect(await quotas.usage("u3", "w3")).toEqual({ userUsedBytes: 300, workspaceUsedBytes: 300, workspaceObjectCount: 1 });
      const refunds = await Promise.all([quotas.refund("w3", "ref-1"), quotas.refund("w3", "ref-1")]);
      expect(refunds.sort()).toEqual([0, 300]);
      expect(await quotas.usage("u3", "w3")).toEqual({ userUsedBytes: 0, workspaceUsedBytes: 0, workspaceObjectCount: 0 });
      expect(await quotas.refund("w3", "never-stored")).toBe(0);
    });
  });
}
