import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RedisServer, startRedis } from "../../test/harness/index.js";
import { type KeyedLock, LocalKeyedLock } from "./keyed-lock.js";
import { RedisKeyedLock } from "./redis-keyed-lock.js";

/** The same behaviour from every lock; `replicas()` gives locks that must exclude each other. */
function describeKeyedLockConformance(name: string, setup: () => Promise<{ replicas(): KeyedLock[]; dispose(): Promise<void> }>): void {
  describe(`KeyedLock conformance: ${name}`, () => {
    let fixture: Awaited<ReturnType<typeof setup>>;
    beforeAll(async () => {
      fixture = await setup();
    });
    afterAll(async () => fixture?.dispose());

    it("never lets two holders of one key overlap, across replicas", async () => {
      const locks = fixture.replicas();
      let holders = 0;
      let most = 0;
      const order: number[] = [];
      await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          locks[i % locks.length]!.run("k", async () => {
            holders += 1;
            most = Math.max(most, holders);
            await sleep(5);
            order.push(i);
            holders -= 1;
          }),
        ),
      );
      expect(most).toBe(1);
      expect(order).toHaveLength(12);
    });

    it("runs different keys in parallel and frees a key after a failure", async () => {
      const [lock] = fixture.replicas();
      let together = 0;
      let most = 0;
      await Promise.all(
        ["a", "b", "c"].map((key) =>
          lock!.run(key, async () => {
            together += 1;
            most = Math.max(most, together);
            await sleep(30);
            together -= 1;
          }),
        ),
      );
      expect(most).toBe(3);
      await expect(lock!.run("f", async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
      expect(await lock!.run("f", async () => "free again")).toBe("free again");
    });
  });
}

describeKeyedLockConformance("in process", async () => {
  const lock = new LocalKeyedLock();
  return { replicas: () => [lock, lock], dispose: async () => {} };
});

let server: RedisServer;
const clients: Redis[] = [];
describeKeyedLockConformance("redis, two replicas", async () => {
  server = await startRedis();
  const replica = () => {
    const redis = new Redis(server.url);
    clients.push(redis);
    // A short lease proves renewal: the work below outlasts several leases.
    return new RedisKeyedLock(redis, { leaseMs: 60 });
  };
  const locks = [replica(), replica()];
  return {
    replicas: () => locks,
    dispose: async () => {
      for (const c of clients) c.disconnect();
      await server.stop();
    },
  };
});

describe("RedisKeyedLock lease", () => {
  it("keeps the lock while work outlasts the lease, and gives up with ABORTED after waitMs", async () => {
    const redisServer = await startRedis();
    const a = new Redis(redisServer.url);
    const b = new Redis(redisServer.url);
    try {
      const holder = new RedisKeyedLock(a, { leaseMs: 60 });
      const waiter = new RedisKeyedLock(b, { leaseMs: 60, waitMs: 150 });
      const held = holder.run("long", () => sleep(400));
      await sleep(20);
      await expect(waiter.run("long", async () => "got it")).rejects.toMatchObject({ code: 10 });
      await held;
      expect(await waiter.run("long", async () => "got it")).toBe("got it");
    } finally {
      a.disconnect();
      b.disconnect();
      await redisServer.stop();
    }
  });
});
