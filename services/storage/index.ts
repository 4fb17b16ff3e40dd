import type { ServiceImpl } from "@connectrpc/connect";
import { BucketClass } from "../../gen/mentatlab/v1/common_pb.js";
import type { StorageService } from "../../gen/mentatlab/v1/storage_pb.js";
import type { HttpRoute } from "../shared/http-route.js";
import { connectRedis } from "../shared/redis.js";
import { createBlobStore } from "./backend.js";
import type { BlobStore } from "./blob-store.js";
import type { StorageConfig } from "./config.js";
import { Ingestor } from "./ingest.js";
import { type KeyedLock, LocalKeyedLock } from "./keyed-lock.js";
import { RedisKeyedLock } from "./redis-keyed-lock.js";
import { ClamdScanner } from "./malware-scanner.js";
import { createMediaRoutes } from "./media-route.js";
import { MetadataExtractor } from "./media-metadata.js";
import { MeteredQuotaStore } from "./metered-quota-store.js";
import { StorageMetrics } from "./metrics.js";
import { MemoryQuotaStore, type QuotaStore } from "./quota-store.js";
import { RedisQuotaStore } from "./redis-quota-store.js";
import { RedisRefCacheL2 } from "./redis-ref-cache.js";
import { RefCache } from "./ref-cache.js";
import { BlobRefIndex } from "./ref-index.js";
import { RefRemover } from "./ref-remover.js";
import { ResumableUploads } from "./resumable-uploads.js";
import { applyLifecycle, type LifecycleOutcome } from "./s3-lifecycle.js";
import { S3BlobStore } from "./s3-blob-store.js";
import { createStorageServiceImpl } from "./storage-service.js";
import { type SweepResult, Sweeper } from "./sweeper.js";
import { UploadSessionStore } from "./upload-session.js";
import { UrlSigner } from "./url-signer.js";

export { storageConfigFromEnv, type StorageConfig } from "./config.js";
export { StorageMetrics } from "./metrics.js";

export interface StorageRuntime {
  readonly impl: ServiceImpl<typeof StorageService>;
  /** Plain-HTTP GET and HEAD of objects under `/media/`. */
  readonly routes: HttpRoute[];
  /** Counters for `reference_cache_hit_ratio` and `upload_size_bytes`. */
  readonly metrics: StorageMetrics;
  /** S3 only: whether bucket lifecycle rules were applied at start-up. */
  readonly lifecycle: LifecycleOutcome | undefined;
  /** Runs one expiry sweep now, as if the clock read `nowMs` (the timer sweeps every `sweepIntervalMs`). */
  sweep(nowMs?: number): Promise<SweepResult>;
  close(): Promise<void>;
}

const DAY = 86_400;

/** Replacements for what the configuration would build, for tests and benchmarks that instrument a backend. */
export interface StorageOverrides {
  readonly blobStore?: BlobStore;
}

/** Builds the StorageService on the configured backends and starts its expiry sweeper. */
export async function createStorage(config: StorageConfig, overrides: StorageOverrides = {}): Promise<StorageRuntime> {
  const store = overrides.blobStore ?? createBlobStore(config.backend);
  const redis = config.redisUrl ? await connectRedis(config.redisUrl, { user: "storage", timeoutMs: config.redisTimeoutMs }) : undefined;
  const limits = { userBytes: config.userQuotaBytes, workspaceBytes: config.workspaceQuotaBytes };
  const metrics = new StorageMetrics();
  const quotas: QuotaStore = new MeteredQuotaStore(redis ? new RedisQuotaStore(redis, limits) : new MemoryQuotaStore(limits), metrics);
  // Across replicas, chunks of one upload and uploads of one digest must exclude each other through Redis.
  const newLock = (): KeyedLock => (redis ? new RedisKeyedLock(redis) : new LocalKeyedLock());
  const index = new BlobRefIndex(store);
  const refs = new RefCache(
    index,
    redis ? new RedisRefCacheL2(redis) : undefined,
    { l1MaxEntries: config.cacheL1MaxEntries, l1TtlMs: config.cacheL1TtlMs, l2TtlSeconds: config.cacheL2TtlSeconds },
    metrics,
  );
  const ingestor = new Ingestor({
    store,
    index,
    refs,
    scanner: config.clamd ? new ClamdScanner(config.clamd) : undefined,
    extractor: new MetadataExtractor(store, config.ffprobePath),
    limits: config.limits,
    ttlSeconds: (bucketClass) => (bucketClass === BucketClass.TEMP ? config.tempTtlSeconds : config.mediaTtlSeconds),
    metrics,
    digestLock: newLock(),
  });
  const uploads = new ResumableUploads({
    store,
    sessions: new UploadSessionStore(store),
    ingestor,
    quotas,
    lock: newLock(),
    uploadTtlSeconds: config.uploadTtlSeconds,
  });
  const remover = new RefRemover(store, index, refs, quotas);
  const signer = new UrlSigner(config.presignSecret);

  let lifecycle: LifecycleOutcome | undefined;
  if (store instanceof S3BlobStore && config.backend.kind === "s3") {
    const days = (seconds: number) => Math.max(1, Math.ceil(seconds / DAY));
    lifecycle = await applyLifecycle(store.client, store.bucket, {
      mediaExpireDays: days(config.mediaTtlSeconds),
      mediaArchiveDays: days(config.mediaArchiveAfterSeconds),
      tempExpireDays: days(config.tempTtlSeconds),
      uploadExpireDays: days(config.uploadTtlSeconds) + 1,
      archiveStorageClass: config.backend.archiveStorageClass,
    });
    if (lifecycle !== "applied") {
      console.warn(
        lifecycle === "unsupported"
          ? "storage: the S3 server refused lifecycle rules; expiry relies on the service's sweeper alone"
          : "storage: S3 lifecycle rules applied without the archive transition (no archive tier configured)",
      );
    }
  }

  const sweeper = new Sweeper(store, index, remover, uploads, quotas);
  sweeper.start(config.sweepIntervalMs, (err) => console.error("storage: expiry sweep failed:", err));

  return {
    impl: createStorageServiceImpl({
      store,
      refs,
      quotas,
      ingestor,
      uploads,
      remover,
      signer,
      publicUrl: config.publicUrl,
      defaultChunkBytes: config.defaultChunkBytes,
    }),
    routes: createMediaRoutes({ store, refs, signer }),
    metrics,
    lifecycle,
    sweep: (nowMs) => sweeper.sweep(nowMs),
    async close() {
      await sweeper.stop();
      await quotas.close();
      redis?.disconnect();
      await store.close();
    },
  };
}
