import { Redis } from "ioredis";
import { type RedisServer, type S3Server, makeTempDir, removeTempDir, startRedis, startS3 } from "../../test/harness/index.js";
import { describeStorageServiceConformance } from "./storage-service.conformance.js";

describeStorageServiceConformance("file backend, quotas and refs in SQLite, in-process cache", async () => {
  const root = makeTempDir("storage-file");
  let n = 0;
  return {
    freshEnv: async () => ({ STORAGE_DIR: `${root}/${n++}` }),
    dispose: async () => removeTempDir(root),
  };
});

describeStorageServiceConformance("S3 backend (fauxqs), Redis quotas and cache", async () => {
  const s3: S3Server = await startS3();
  const redis: RedisServer = await startRedis();
  let n = 0;
  return {
    freshEnv: async () => {
      // Each runtime gets an empty bucket and its own Redis database, as a fresh deployment would.
      const db = n++;
      const admin = new Redis(`${redis.url}/${db}`);
      await admin.flushdb();
      admin.disconnect();
      return {
        S3_ENDPOINT: s3.endpoint,
        S3_BUCKET: await s3.createBucket(`conf-${db}-${Date.now()}`),
        S3_REGION: s3.region,
        AWS_ACCESS_KEY_ID: s3.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
        REDIS_URL: `${redis.url}/${db}`,
      };
    },
    dispose: async () => {
      await s3.stop();
      await redis.stop();
    },
  };
});
