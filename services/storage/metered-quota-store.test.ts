import { describe, expect, it } from "vitest";
import { MeteredQuotaStore } from "./metered-quota-store.js";
import { StorageMetrics } from "./metrics.js";
import { describeQuotaStoreConformance } from "./quota-store.conformance.js";
import { MemoryQuotaStore, type QuotaStore, type Usage } from "./quota-store.js";

const limits = { userBytes: 1_000, workspaceBytes: 5_000 };
const lease = (id: string, workspace = "ws-a") => ({ id, user: "alice", workspace });

describeQuotaStoreConformance("metered memory", async (given) => ({
  store: new MeteredQuotaStore(new MemoryQuotaStore(given), new StorageMetrics()),
  dispose: async () => {},
}));

describe("MeteredQuotaStore", () => {
  it("keeps each workspace's usage and the quota in StorageMetrics as uploads commit, are refunded or abandoned", async () => {
    const metrics = new StorageMetrics();
    const store = new MeteredQuotaStore(new MemoryQuotaStore(limits), metrics);
    expect(metrics.workspaceQuotaBytes).toBe(5_000);

    await store.reserve(lease("l1"), 300, Date.now() + 60_000);
    await store.commit(lease("l1"), "ref-1", 300);
    await store.reserve(lease("l2", "ws-b"), 200, Date.now() + 60_000);
    await store.commit(lease("l2", "ws-b"), "ref-2", 200);
    expect(Object.fromEntries(metrics.workspaceUsedBytes)).toEqual({ "ws-a": 300, "ws-b": 200 });

    await store.reserve(lease("l3"), 100, Date.now() + 60_000);
    await store.usage("alice", "ws-a");
    expect(metrics.workspaceUsedBytes.get("ws-a")).toBe(400);
    await store.release("l3");
    expect(metrics.workspaceUsedBytes.get("ws-a")).toBe(300);

    await store.refund("ws-a", "ref-1");
    expect(Object.fromEntries(metrics.workspaceUsedBytes)).toEqual({ "ws-a": 0, "ws-b": 200 });
  });

  it("a failed usage read leaves the gauge stale but the change succeeds", async () => {
    const inner = new MemoryQuotaStore(limits);
    const failingReads: QuotaStore = Object.assign(Object.create(inner) as QuotaStore, {
      usage: async (): Promise<Usage> => {
        throw new Error("Redis is down");
      },
    });
    const metrics = new StorageMetrics();
    const store = new MeteredQuotaStore(failingReads, metrics);
    await store.reserve(lease("l1"), 300, Date.now() + 60_000);
    await expect(store.commit(lease("l1"), "ref-1", 300)).resolves.toBeUndefined();
    expect(metrics.workspaceUsedBytes.size).toBe(0);
    expect((await inner.usage("alice", "ws-a")).workspaceUsedBytes).toBe(300);
  });
});
