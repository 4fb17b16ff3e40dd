/** What a blob store knows about one stored object. */
export interface BlobInfo {
  readonly key: string;
  readonly size: number;
  readonly lastModified: Date;
}

/** Bytes as a stream (an array of chunks counts too: `for await` reads both). */
export type ByteSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/** A byte range of an object; `length` absent means to the end. */
export interface ByteRange {
  readonly offset: number;
  readonly length?: number;
}

/** A URL (and headers) that lets a client PUT an object straight into the store. */
export interface PresignedPut {
  readonly url: string;
  readonly headers: Record<string, string>;
}

/**
 * Flat key → bytes store under the storage service: local files or S3. Keys are `/`-separated
 * segments the service builds itself (user input is encoded before it gets here). Bodies are
 * streamed both ways; no implementation may buffer a whole object.
 */
export interface BlobStore {
  /** Which backend this is, for logs and capability checks. */
  readonly kind: "file" | "s3";
  /**
   * Streams `body` into `key`. The object becomes visible only once complete; if `body` throws,
   * nothing is kept and the error is rethrown. Returns the number of bytes written.
   */
  write(key: string, body: ByteSource): Promise<number>;
  /** Reads `key` (or a range of it) as a stream; undefined when the key does not exist. */
  read(key: string, range?: ByteRange): Promise<ByteSource | undefined>;
  stat(key: string): Promise<BlobInfo | undefined>;
  /** Removes `key`; removing a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** Every object whose key starts with `prefix`, in no particular order. */
  list(prefix: string): AsyncIterable<BlobInfo>;
  /** A location ffprobe can open and seek in: a local path or a short-lived http URL. */
  probeLocation(key: string): Promise<string>;
  /**
   * Backends whose writes go through temp files: removes those a write interrupted by a crash left
   * behind, untouched since `olderThan`; returns how many. (S3 needs none: lifecycle rules abort
   * incomplete multipart uploads.)
   */
  removeStaleTemporaries?(olderThan: Date): Promise<number>;
  /** A presigned PUT for `key`, when the backend supports direct uploads; undefined otherwise. */
  presignPut(key: string, ttlSeconds: number): Promise<PresignedPut | undefined>;
  close(): Promise<void>;
}

/** Reads a small object whole (JSON documents, never media); undefined when missing. */
export async function readSmall(store: BlobStore, key: string): Promise<Buffer | undefined> {
  const body = await store.read(key);
  if (!body) return undefined;
  const parts: Uint8Array[] = [];
  for await (const part of body) parts.push(part);
  return Buffer.concat(parts);
}

/** Writes a small object whole (JSON documents, never media). */
export async function writeSmall(store: BlobStore, key: string, bytes: Uint8Array): Promise<void> {
  await store.write(key, [bytes]);
}
