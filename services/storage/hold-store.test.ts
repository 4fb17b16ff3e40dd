import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll } from "vitest";
import { makeTempDir, type RedisServer, removeTempDir, startRedis } from "../../test/harness/index.js";
import { openDatabase } from "../shared/sqlite.js";
import { describeHoldStoreConformance } from "./hold-store.conformance.js";
import { MemoryHoldStore } from "./hold-store.js";
import { RedisHoldStore } from "./redis-hold-store.js";
import { SqliteHoldStore } from "./sqlite-hold-store.js";

describeHoldStoreConformance("memory", async () => ({ holds: new MemoryHoldStore(), dispose: async () => {} }));

describeHoldStoreConformance("sqlite", async () => {
  const dir = makeTempDir("holds-sqlite");
  const db = openDatabase(join(dir, "mentatlab.db"));
  return {
    holds: new SqliteHoldStore(db),
    dispose: async () => {
      db.close();
      removeTempDir(dir);
    },
  };
});

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => redis?.stop());

describeHoldStoreConformance("redis", async () => {
  const client = new Redis(redis.url);
  await client.flushdb();
  return { holds: new RedisHoldStore(client), dispose: async () => client.disconnect() };
});
