import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeTempDir, removeTempDir, startRedis } from "../../test/harness/index.js";
import { openDatabase } from "../shared/sqlite.js";
import { describeQuotaStoreConformance } from "./quota-store.conformance.js";
import { MemoryQuotaStore } from "./quota-store.js";
import { RedisQuotaStore } from "./redis-quota-store.js";
import { SqliteQuotaStore } from "./sqlite-quota-store.js";

describeQuotaStoreConformance("memory", async (limits) => ({
  store: new MemoryQuotaStore(limits),
  dispose: async () => {},
}));

describeQuotaStoreConformance("redis", async (limits) => {
  const server = await startRedis();
  const redis = new Redis(server.url);
  return {
    store: new RedisQuotaStore(redis, limits),
    dispose: async () => {
      redis.disconnect();
      await server.stop();
    },
  };
});

describeQuotaStoreConformance("sqlite", async (limits) => {
  const dir = makeTempDir("quota-sqlite");
  const db = openDatabase(join(dir, "mentatlab.db"));
  return {
    store: new SqliteQuotaStore(db, limits),
    dispose: async () => {
      db.close();
      removeTempDir(dir);
    },
  };
});

describe("SqliteQuotaStore on a file shared by connections", () => {
  const limits = { userBytes: 1000, workspaceBytes: 5000 };
  let dir: string;
  beforeAll(() => {
    dir = makeTempDir("quota-sqlite-shared");
  });
  afterAll(() => removeTempDir(dir));

  it("keeps usage, holds and charges when the file is opened again", async () => {
    const file = join(dir, "reopen.db");
    const first = openDatabase(file);
    const before = new SqliteQuotaStore(first, limits);
    await before.reserve({ id: "held", user: "u", workspace: "w" }, 100, Date.now() + 60_000);
    await before.reserve({ id: "stored", user: "u", workspace: "w" }, 300, Date.now() + 60_000);
    await before.commit({ id: "stored", user: "u", workspace: "w" }, "ref-1", 250);
    first.close();

    const second = openDatabase(file);
    const after = new SqliteQuotaStore(second, limits);
    expect(await after.usage("u", "w")).toEqual({ userUsedBytes: 350, workspaceUsedBytes: 350, workspaceObjectCount: 1 });
    expect(await after.refund("w", "ref-1")).toBe(250);
    await after.release("held");
    expect((await after.usage("u", "w")).userUsedBytes).toBe(0);
    second.close();
  });

  it("never overshoots a quota when two connections reserve against it", async () => {
    const file = join(dir, "shared.db");
    const a = openDatabase(file);
    const b = openDatabase(file);
    const stores = [new SqliteQuotaStore(a, limits), new SqliteQuotaStore(b, limits)];
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) => stores[i % 2]!.reserve({ id: `l${i}`, user: "par", workspace: "w" }, 30, Date.now() + 60_000)),
    );
    expect(results.filter((r) => r.granted)).toHaveLength(Math.floor(1000 / 30));
    expect((await stores[1]!.usage("par", "w")).userUsedBytes).toBe(Math.floor(1000 / 30) * 30);
    a.close();
    b.close();
  });

  it("answers UNAVAILABLE, not INTERNAL, once its database is closed", async () => {
    const db = openDatabase(join(dir, "closed.db"));
    const store = new SqliteQuotaStore(db, limits);
    db.close();
    await expect(store.usage("u", "w")).rejects.toMatchObject({
      code: Code.Unavailable,
      rawMessage: expect.stringContaining("the quota database is unavailable"),
    });
  });
});
