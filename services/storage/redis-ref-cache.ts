import type { Redis } from "ioredis";
import { redisCall } from "../shared/redis.js";
import type { RefCacheL2 } from "./ref-cache.js";

/**
 * The L2 ref cache in Redis, shared by every replica. Reads and fills fail soft (a cache outage only
 * costs index lookups); invalidation fails hard, since a stale entry would outlive a delete.
 */
export class RedisRefCacheL2 implements RefCacheL2 {
  constructor(
    private readonly redis: Redis,
    private readonly prefix = "mentatlab:storage:ref:",
  ) {}

  async get(key: string): Promise<string | undefined> {
    return (await this.redis.get(this.prefix + key).catch(() => null)) ?? undefined;
  }

  async set(key: string, value: string, ttlSeconds: number): Promise<void> {
    await this.redis.set(this.prefix + key, value, "EX", Math.max(1, ttlSeconds)).catch(() => undefined);
  }

  async delete(key: string): Promise<void> {
    await redisCall("the reference cache", () => this.redis.del(this.prefix + key));
  }
}
