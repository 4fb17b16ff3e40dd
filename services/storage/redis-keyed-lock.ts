import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Redis } from "ioredis";
import { redisCall } from "../shared/redis.js";
import { type KeyedLock, LocalKeyedLock } from "./keyed-lock.js";

// Only the holder's token may extend or free the lock, so a holder that outlived its lease cannot free another's.
const EXTEND = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

export interface RedisKeyedLockOptions {
  /** Lease length; renewed every third of it while the work runs. */
  readonly leaseMs?: number;
  /** How long to wait for another holder before giving up with ABORTED. */
  readonly waitMs?: number;
  readonly prefix?: string;
}

/** Mutual exclusion per key across every replica sharing a Redis: a leased SET NX, renewed while held. */
export class RedisKeyedLock implements KeyedLock {
  private readonly local = new LocalKeyedLock();
  private readonly leaseMs: number;
  private readonly waitMs: number;
  private readonly prefix: string;

  constructor(
    private readonly redis: Redis,
    options: RedisKeyedLockOptions = {},
  ) {
    this.leaseMs = options.leaseMs ?? 30_000;
    this.waitMs = options.waitMs ?? 30_000;
    this.prefix = options.prefix ?? "mentatlab:storage:lock:";
  }

  async run<T>(key: string, work: () => Promise<T>): Promise<T> {
    // Queue in process first, so one replica never polls Redis against itself.
    return this.local.run(key, async () => {
      const redisKey = this.prefix + key;
      const token = randomUUID();
      const deadline = Date.now() + this.waitMs;
      const acquire = () => redisCall("the lock store", () => this.redis.set(redisKey, token, "PX", this.leaseMs, "NX"));
      while ((await acquire()) !== "OK") {
        if (Date.now() > deadline) {
          throw new ConnectError(`"${key}" is busy with another request; retry shortly`, Code.Aborted);
        }
        await sleep(25);
      }
      const renew = setInterval(
        () => {
          void this.redis.eval(EXTEND, 1, redisKey, token, this.leaseMs).catch(() => undefined);
        },
        Math.max(10, Math.floor(this.leaseMs / 3)),
      );
      try {
        return await work();
      } finally {
        clearInterval(renew);
        // If Redis is gone the lease simply runs out; the work's own outcome is what the caller needs.
        await this.redis.eval(RELEASE, 1, redisKey, token).catch(() => undefined);
      }
    });
  }
}
