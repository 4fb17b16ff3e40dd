import type { BlobStore } from "./blob-store.js";
import type { BackendConfig } from "./config.js";
import { FileBlobStore } from "./file-blob-store.js";
import { S3BlobStore } from "./s3-blob-store.js";

/** The blob store the configuration names. */
export function createBlobStore(backend: BackendConfig): BlobStore {
  return backend.kind === "s3" ? new S3BlobStore(backend) : new FileBlobStore(backend.root);
}
