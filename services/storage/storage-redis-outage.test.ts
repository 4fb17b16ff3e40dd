import { randomBytes } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeTempDir, type RedisServer, removeTempDir, startRedis } from "../../test/harness/index.js";
import { codeOf, type RuntimeUnderTest, startRuntime, uploadStream } from "./storage-service.conformance.js";

describe("StorageService while Redis is down", () => {
  let root: string;
  let redis: RedisServer;
  let sut: RuntimeUnderTest;
  beforeAll(async () => {
    root = makeTempDir("storage-redis-outage");
    redis = await startRedis({ persistence: true });
    sut = await startRuntime(
      { freshEnv: async () => ({ STORAGE_DIR: root, REDIS_URL: redis.url }), dispose: async () => {} },
      {
        STORAGE_CACHE_L1_TTL_MS: "1",
      },
    );
  });
  afterAll(async () => {
    await sut?.close();
    await redis?.stop();
    removeTempDir(root);
  });

  it("refuses uploads with UNAVAILABLE, keeps serving stored refs, and recovers when Redis is back", async () => {
    const client = sut.client("olga", "ws-outage");
    const { ref } = await client.upload(uploadStream({}, randomBytes(4000)));
    // Graceful, so the AOF holds the usage recorded so far when it comes back.
    await redis.shutdown();
    const refused = await codeOf(client.upload(uploadStream({ sizeBytes: 4000n }, randomBytes(4000))));
    expect(refused.code).toBe(Code.Unavailable);
    expect(refused.message).toContain("quota store is unavailable");
    // Where Redis listens is the server's business: the cause goes to the log, not to the client.
    expect(refused.message).not.toContain(new URL(redis.url).host);
    expect((await codeOf(client.getUsage({}))).code).toBe(Code.Unavailable);
    // The L2 cache fails soft: lookups fall through to the index.
    await new Promise((r) => setTimeout(r, 5));
    expect((await client.stat({ refId: ref!.id })).ref?.id).toBe(ref!.id);
    await redis.start();
    const deadline = Date.now() + 5_000;
    let usage = await codeOf(client.getUsage({}));
    while (usage.code === Code.Unavailable && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      usage = await codeOf(client.getUsage({}));
    }
    expect((await client.getUsage({})).userUsedBytes).toBe(4000n);
    expect((await client.upload(uploadStream({}, randomBytes(4000)))).ref?.sizeBytes).toBe(4000n);
  });
});
