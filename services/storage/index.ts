/**
 * StorageService: content-addressed uploads (client stream, resumable chunks, presigned PUT) into a
 * blob store (files or S3), ingest (MIME sniffing, size limits, clamd scan, media metadata), quotas,
 * the ref index and cache, the `/media/` GET route and the expiry sweeper. A composition root reads
 * the config and mounts the runtime; `mesh-module.ts` does that for services/mesh.
 *
 * @example
 * ```ts
 * import { createStorage, storageConfigFromEnv } from "../storage/index.js";
 *
 * const storage = await createStorage(storageConfigFromEnv(env, dataDir, { presignSecret, publicUrl }));
 * router.service(StorageService, storage.impl); // plus storage.routes on the plain-HTTP side
 * await storage.close();
 * ```
 */
import type { DatabaseSync } from "node:sqlite";
import type { ServiceImpl } from "@connectrpc/connect";
import { BucketClass } from "../../gen/mentatlab/v1/common_pb.js";
import type { StorageService } from "../../gen/mentatlab/v1/storage_pb.js";
import type { HttpRoute } from "../shared/http-route.js";
import { openDatabase } from "../shared/sqlite.js";
import { connectRedis } from "../shared/redis.js";
import { createBlobStore } from "./backend.js";
import type { BlobStore } from "./blob-store.js";
import type { ClamdConfig, StorageConfig } from "./config.js";
import { Ingestor } from "./ingest.js";
import { type KeyedLock, LocalKeyedLock } from "./keyed-lock.js";
import { RedisKeyedLock } from "./redis-keyed-lock.js";
import { ClamdScanner } from "./malware-scanner.js";
import { createMediaRoutes } from "./media-route.js";
import { MetadataExtractor } from "./media-metadata.js";
import { FaultReportingBlobStore } from "./object-storage-faults.js";
import { MeteredQuotaStore } from "./metered-quota-store.js";
import { StorageMetrics } from "./metrics.js";
import { MemoryQuotaStore, type QuotaStore } from "./quota-store.js";
import { RedisQuotaStore } from "./redis-quota-store.js";
import { RedisRefCacheL2 } from "./redis-ref-cache.js";
import { SqliteQuotaStore } from "./sqlite-quota-store.js";
import { SqliteRefIndex } from "./sqlite-ref-index.js";
import { RefCache } from "./ref-cache.js";
import { BlobRefIndex, type RefIndex } from "./ref-index.js";
import { type CrashPoint, RefRemover } from "./ref-remover.js";
import { type HoldStore, MemoryHoldStore } from "./hold-store.js";
import { ObjectHolds } from "./object-holds.js";
import { RedisHoldStore } from "./redis-hold-store.js";
import { SqliteHoldStore } from "./sqlite-hold-store.js";
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

/** The ref index in the embedded database, holding the refs an earlier version kept as documents. */
async function embeddedRefIndex(db: DatabaseSync, store: BlobStore): Promise<RefIndex> {
  const index = new SqliteRefIndex(db);
  await index.importFrom(new BlobRefIndex(store));
  return index;
}

/** The start-up line saying whether uploads are scanned: scanning is opt-in, so its absence must be visible. */
export function scanningNotice(clamd: ClamdConfig | undefined): string {
  if (!clamd) return "storage: uploads are NOT scanned for malware (set CLAMD_SOCKET or CLAMD_HOST to scan them with clamd)";
  const where = clamd.kind === "socket" ? `socket ${clamd.path}` : `${clamd.host}:${clamd.port}`;
  return `storage: uploads are scanned for malware by clamd at ${where}; while it is unreachable uploads are refused`;
}

/** Replacements for what the configuration would build, for tests and benchmarks that instrument a backend. */
export interface StorageOverrides {
  readonly blobStore?: BlobStore;
  /** Stops object removals between steps, as a crash would (garbage-collection tests). */
  readonly crashPoint?: CrashPoint;
}

/** Builds the StorageService on the configured backends and starts its expiry sweeper. */
export async function createStorage(config: StorageConfig, overrides: StorageOverrides = {}): Promise<StorageRuntime> {
  const backend = overrides.blobStore ?? createBlobStore(config.backend);
  const store: BlobStore = new FaultReportingBlobStore(backend);
  const redis = config.redisUrl ? await connectRedis(config.redisUrl, { user: "storage", timeoutMs: config.redisTimeoutMs }) : undefined;
  const limits = { userBytes: config.userQuotaBytes, workspaceBytes: config.workspaceQuotaBytes };
  const metrics = new StorageMetrics();
  const db = !redis && config.databaseFile ? openDatabase(config.databaseFile) : undefined;
  const embeddedQuotas = db && new SqliteQuotaStore(db, limits);
  const backing = redis ? new RedisQuotaStore(redis, limits) : (embeddedQuotas ?? new MemoryQuotaStore(limits));
  const quotas: QuotaStore = new MeteredQuotaStore(backing, metrics);
  // Across replicas, chunks of one upload and uploads of one digest must exclude each other through Redis.
  const newLock = (): KeyedLock => (redis ? new RedisKeyedLock(redis) : new LocalKeyedLock());
  const index = db ? await embeddedRefIndex(db, store) : new BlobRefIndex(store);
  await embeddedQuotas?.chargeExisting(index.all());
  const holds: HoldStore = redis ? new RedisHoldStore(redis) : db ? new SqliteHoldStore(db) : new MemoryHoldStore();
  await holds.adoptOnce(index.all(), Date.now());
  const digestLock = newLock();
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
    extractor: new MetadataExtractor(store, config.ffprobePath, config.ffprobeTimeoutMs),
    limits: config.limits,
    ceilings: config.ceilings,
    ttlSeconds: (bucketClass) => (bucketClass === BucketClass.TEMP ? config.tempTtlSeconds : config.mediaTtlSeconds),
    metrics,
    digestLock,
    holds,
  });
  const uploads = new ResumableUploads({
    store,
    sessions: new UploadSessionStore(store),
    ingestor,
    quotas,
    lock: newLock(),
    uploadTtlSeconds: config.uploadTtlSeconds,
  });
  const remover = new RefRemover(store, index, refs, quotas, overrides.crashPoint);
  const objectHolds = new ObjectHolds(holds, index, remover, digestLock);
  const signer = new UrlSigner(config.presignSecret);

  let lifecycle: LifecycleOutcome | undefined;
  if (backend instanceof S3BlobStore && config.backend.kind === "s3") {
    const days = (seconds: number) => Math.max(1, Math.ceil(seconds / DAY));
    lifecycle = await applyLifecycle(backend.client, backend.bucket, {
      mediaArchiveDays: days(config.mediaArchiveAfterSeconds),
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

  console.info(scanningNotice(config.clamd));

  const sweeper = new Sweeper(store, index, uploads, quotas, holds, objectHolds);
  sweeper.start(config.sweepIntervalMs, (err) => console.error("storage: expiry sweep failed:", err));

  return {
    impl: createStorageServiceImpl({
      store,
      index,
      refs,
      quotas,
      ingestor,
      uploads,
      holds: objectHolds,
      signer,
      publicUrl: config.publicUrl,
      defaultChunkBytes: config.defaultChunkBytes,
    }),
    routes: createMediaRoutes({ store, refs, holds: objectHolds, signer }),
    metrics,
    lifecycle,
    sweep: (nowMs) => sweeper.sweep(nowMs),
    async close() {
      await sweeper.stop();
      await quotas.close();
      redis?.disconnect();
      db?.close();
      await store.close();
    },
  };
}
