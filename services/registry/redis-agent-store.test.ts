import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll } from "vitest";
import { type RedisServer, startRedis } from "../../test/harness/index.js";
import { describeAgentStoreConformance } from "./agent-store.conformance.js";
import { RedisAgentStore } from "./redis-agent-store.js";

let server: RedisServer;
const clients: Redis[] = [];
beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.quit()));
  await server.stop();
});

describeAgentStoreConformance("redis", async () => {
  const redis = new Redis(server.url);
  clients.push(redis);
  return new RedisAgentStore(redis, `test:${randomUUID()}:`);
});
