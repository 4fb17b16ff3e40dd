import { makeTempDir, removeTempDir, startS3 } from "../../test/harness/index.js";
import { describeBlobStoreConformance } from "./blob-store.conformance.js";
import { FileBlobStore } from "./file-blob-store.js";
import { S3BlobStore } from "./s3-blob-store.js";

describeBlobStoreConformance("file", async () => {
  const dir = makeTempDir("blobs");
  return { store: new FileBlobStore(dir), dispose: async () => removeTempDir(dir) };
});

describeBlobStoreConformance("s3 (fauxqs)", async () => {
  const s3 = await startS3();
  const store = new S3BlobStore({ ...s3, partBytes: 5 * 1024 * 1024, requestTimeoutMs: 15_000 });
  return {
    store,
    dispose: async () => {
      await store.close();
      await s3.stop();
    },
  };
});
