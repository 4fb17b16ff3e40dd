import { create } from "@bufbuild/protobuf";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MediaRefSchema } from "../../gen/mentatlab/v1/common_pb.js";
import { makeTempDir, type RedisServer, removeTempDir, startRedis } from "../../test/harness/index.js";
import { FileBlobStore } from "./file-blob-store.js";
import { newRefId } from "./keys.js";
import { StorageMetrics } from "./metrics.js";
import { RedisRefCacheL2 } from "./redis-ref-cache.js";
import { RefCache } from "./ref-cache.js";
import { BlobRefIndex, type StoredRef } from "./ref-index.js";

describe("RefCache: L1 in process over L2 in a real Redis over the index", () => {
  let dir: string;
  let server: RedisServer;
  let redis: Redis;
  let index: BlobRefIndex;
  beforeAll(async () => {
    dir = makeTempDir("ref-cache");
    server = await startRedis();
    redis = new Redis(server.url);
    index = new BlobRefIndex(new FileBlobStore(dir));
  });
  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
    removeTempDir(dir);
  });

  async function storedRef(): Promise<StoredRef> {
    const ref = create(MediaRefSchema, { id: newRefId(), workspace: "ws-cache", sha256: "ab".repeat(32), sizeBytes: 5n });
    const stored = { ref, blobKey: `media/ws-cache/${ref.id}` };
    await index.put(stored);
    return stored;
  }

  const replica = (l1TtlMs = 60_000) => {
    const metrics = new StorageMetrics();
    const cache = new RefCache(index, new RedisRefCacheL2(redis), { l1MaxEntries: 100, l1TtlMs, l2TtlSeconds: 3600 }, metrics);
    return { cache, metrics };
  };

  it("misses once, then hits L1; another replica hits L2", async () => {
    const stored = await storedRef();
    const a = replica();
    const b = replica();
    expect((await a.cache.get("ws-cache", stored.ref.id))?.ref).toEqual(stored.ref);
    expect([a.metrics.referenceCacheLookups, a.metrics.referenceCacheHits]).toEqual([1, 0]);
    await a.cache.get("ws-cache", stored.ref.id);
    expect(a.metrics.referenceCacheHitRatio).toBe(0.5);
    // The index copy goes away: replica B can only be answering from Redis.
    await index.delete(stored);
    expect((await b.cache.get("ws-cache", stored.ref.id))?.ref).toEqual(stored.ref);
    expect(b.metrics.referenceCacheHitRatio).toBe(1);
    expect(await redis.ttl(`mentatlab:storage:ref:ws-cache\u0000${stored.ref.id}`)).toBeGreaterThan(3500);
  });

  it("expires L1 entries after its TTL and falls back to L2", async () => {
    const stored = await storedRef();
    const a = replica(50);
    await a.cache.get("ws-cache", stored.ref.id);
    await redis.del(`mentatlab:storage:ref:ws-cache\u0000${stored.ref.id}`);
    await new Promise((r) => setTimeout(r, 80));
    await a.cache.get("ws-cache", stored.ref.id);
    // Neither L1 (expired) nor L2 (deleted) had it: two misses.
    expect(a.metrics.referenceCacheHits).toBe(0);
  });

  it("forgets invalidated refs in L1 and L2 and never caches misses", async () => {
    const stored = await storedRef();
    const a = replica();
    const b = replica();
    await a.cache.get("ws-cache", stored.ref.id);
    await index.delete(stored);
    await a.cache.invalidate("ws-cache", stored.ref.id);
    expect(await a.cache.get("ws-cache", stored.ref.id)).toBeUndefined();
    expect(await b.cache.get("ws-cache", stored.ref.id)).toBeUndefined();
    await index.put(stored);
    expect((await b.cache.get("ws-cache", stored.ref.id))?.ref.id).toBe(stored.ref.id);
  });
});
