import { Redis } from "ioredis";
import { startRedis } from "../../test/harness/index.js";
import { describeQuotaStoreConformance } from "./quota-store.conformance.js";
import { MemoryQuotaStore } from "./quota-store.js";
import { RedisQuotaStore } from "./redis-quota-store.js";

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
