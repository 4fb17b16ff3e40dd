import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll } from "vitest";
import { type RedisServer, startRedis } from "../../test/harness/index.js";
import { RedisRunStore } from "./redis-run-store.js";
import { describeRunStoreConformance } from "./run-store.conformance.js";
import type { RunStore } from "./run-store.js";

let server: RedisServer;
beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server.stop();
});

describeRunStoreConformance("redis", async () => {
  const prefix = `test:${randomUUID()}:`;
  const opened: { redis: Redis; store: RunStore }[] = [];
  const open = async () => {
    const redis = new Redis(server.url);
    const store = await RedisRunStore.connect(redis, prefix, 1);
    opened.push({ redis, store });
    return store;
  };
  return {
    store: await open(),
    peer: open,
    async cleanup() {
      for (const { redis, store } of opened) {
        await store.close();
        await redis.quit();
      }
    },
  };
});
