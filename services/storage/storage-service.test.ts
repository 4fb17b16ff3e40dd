import { makeTempDir, removeTempDir } from "../../test/harness/index.js";
import { describeStorageServiceConformance, s3AndRedisBackend } from "./storage-service.conformance.js";

describeStorageServiceConformance("file backend, quotas and refs in SQLite, in-process cache", async () => {
  const root = makeTempDir("storage-file");
  let n = 0;
  return {
    freshEnv: async () => ({ STORAGE_DIR: `${root}/${n++}` }),
    dispose: async () => removeTempDir(root),
  };
});

describeStorageServiceConformance("S3 backend (fauxqs), Redis quotas and cache", () => s3AndRedisBackend("conf"));
