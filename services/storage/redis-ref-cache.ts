import type { Redis } from "ioredis";
import type { RefCacheL2 } from "./ref-cache.js";

/** The L2 ref cache in Redis, shared by every replica. */
export class RedisRefCacheL2 implements RefCacheL2 {
  constructor(
    private readonly redis: Redis,
    private readonly prefix = "mentatlab:storage:ref:",
  ) {}

  async get(key: string): Promise<string | undefined> {
    return (await this.redis.get(this.prefix + key)) ?? undefined;
  }

  async set(key: string, value: string, ttlSeconds: number): Promise<void> {
    await this.redis.set(this.prefix + key, value, "EX", Math.max(1, ttlSeconds));
  }

  async delete(key: string): Promise<void> {
    await this.redis.del(this.prefix + key);
  }
}
