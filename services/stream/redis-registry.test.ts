import { afterAll, beforeAll } from "vitest";
import { type RedisServer, startRedis } from "../../test/harness/index.js";
import { RedisStreamRegistry } from "./redis-registry.js";
import { describeStreamRegistryConformance } from "./registry-conformance.js";

let redis: RedisServer;
let registries = 0;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

// A prefix per registry keeps tests apart while they share one server.
describeStreamRegistryConformance("redis", (retention) =>
  RedisStreamRegistry.connect(redis.url, { ...retention, keyPrefix: `t${++registries}:` }),
);
