import type { ConnectError } from "@connectrpc/connect";
import { storeUnavailableError } from "../shared/store-unavailable.js";
import type { BlobInfo, BlobStore, ByteRange, ByteSource, PresignedPut } from "./blob-store.js";

/**
 * A failure of the object store itself (S3 unreachable, the storage root gone, a disk error) as
 * UNAVAILABLE naming object storage. Refusals of the bytes themselves (limits, digests, scans) come
 * from the service already coded and pass unchanged.
 */
function unavailable(action: string, err: unknown): ConnectError {
  return storeUnavailableError("object storage", `could not ${action}`, err);
}

async function guarded<T>(action: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw unavailable(action, err);
  }
}

async function* guardedStream<T>(action: string, source: AsyncIterable<T> | Iterable<T>): AsyncGenerator<T> {
  try {
    yield* source;
  } catch (err) {
    throw unavailable(action, err);
  }
}

/**
 * Wraps a blob store so that its faults reach callers as UNAVAILABLE rather than as Connect's
 * "internal error", including those that surface while a read stream is being consumed.
 */
export class FaultReportingBlobStore implements BlobStore {
  readonly removeStaleTemporaries?: (olderThan: Date) => Promise<number>;

  constructor(private readonly inner: BlobStore) {
    const sweep = inner.removeStaleTemporaries?.bind(inner);
    if (sweep) this.removeStaleTemporaries = (olderThan) => guarded("sweep temporary files", () => sweep(olderThan));
  }

  get kind(): BlobStore["kind"] {
    return this.inner.kind;
  }

  write(key: string, body: ByteSource): Promise<number> {
    return guarded("store the object", () => this.inner.write(key, body));
  }

  async read(key: string, range?: ByteRange): Promise<ByteSource | undefined> {
    const body = await guarded("read the object", () => this.inner.read(key, range));
    return body && guardedStream("read the object", body);
  }

  stat(key: string): Promise<BlobInfo | undefined> {
    return guarded("look up the object", () => this.inner.stat(key));
  }

  delete(key: string): Promise<void> {
    return guarded("delete the object", () => this.inner.delete(key));
  }

  list(prefix: string): AsyncIterable<BlobInfo> {
    return guardedStream("list objects", this.inner.list(prefix));
  }

  probeLocation(key: string): Promise<string> {
    return guarded("locate the object", () => this.inner.probeLocation(key));
  }

  presignPut(key: string, ttlSeconds: number): Promise<PresignedPut | undefined> {
    return guarded("presign an upload", () => this.inner.presignPut(key, ttlSeconds));
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
