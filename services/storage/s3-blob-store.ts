import { Readable } from "node:stream";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import type { BlobInfo, BlobStore, ByteRange, ByteSource, PresignedPut } from "./blob-store.js";

export interface S3BlobStoreOptions {
  readonly endpoint: string;
  readonly region: string;
  readonly bucket: string;
  readonly accessKeyId: string | undefined;
  readonly secretAccessKey: string | undefined;
  /**
   * Multipart part size; lib-storage buffers the part being filled plus `queueSize` parts in flight.
   * Default 5 MiB (S3's minimum), which caps objects at 10 000 parts ≈ 48 GiB.
   */
  readonly partBytes?: number;
  /** Parts uploaded in parallel; memory held is about partBytes × queueSize. */
  readonly queueSize?: number;
  /**
   * Longest wait for an answer to one S3 request, its own body (a part) included; a hung server fails
   * the call after at most a few of these (the SDK's retries) instead of holding it forever. The
   * body of a download is not bounded by it: a slow reader may take as long as it likes.
   */
  readonly requestTimeoutMs: number;
}

const MiB = 1024 * 1024;

function isNotFound(err: unknown): boolean {
  return err instanceof S3ServiceException && (err.name === "NoSuchKey" || err.name === "NotFound" || err.$metadata.httpStatusCode === 404);
}

/** Blobs in one S3 bucket; writes go through lib-storage, which switches to multipart above one part. */
export class S3BlobStore implements BlobStore {
  readonly kind = "s3";
  readonly client: S3Client;
  readonly bucket: string;
  private readonly partBytes: number;
  private readonly queueSize: number;

  constructor(opts: S3BlobStoreOptions) {
    this.bucket = opts.bucket;
    this.partBytes = opts.partBytes ?? 5 * MiB;
    this.queueSize = opts.queueSize ?? 2;
    this.client = new S3Client({
      endpoint: opts.endpoint,
      region: opts.region,
      forcePathStyle: true,
      // Checksums "when supported" would sign presigned PUTs with the CRC of an empty body (rejected by
      // real S3) and frame streamed bodies as aws-chunked on some servers; our own sha256 covers integrity.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      // Without throwOnRequestTimeout the handler only logs a warning when the deadline passes.
      requestHandler: { requestTimeout: opts.requestTimeoutMs, throwOnRequestTimeout: true },
      ...(opts.accessKeyId && opts.secretAccessKey ? { credentials: { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey } } : {}),
    });
  }

  async write(key: string, body: ByteSource): Promise<number> {
    let written = 0;
    const counted = async function* (): AsyncGenerator<Uint8Array> {
      for await (const chunk of body) {
        written += chunk.byteLength;
        yield chunk;
      }
    };
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: key, Body: Readable.from(counted(), { highWaterMark: 1 }) },
      partSize: this.partBytes,
      queueSize: this.queueSize,
      leavePartsOnError: false,
    });
    await upload.done();
    return written;
  }

  async read(key: string, range?: ByteRange): Promise<ByteSource | undefined> {
    if (range?.length === 0) return (await this.stat(key)) ? [] : undefined;
    const offset = range?.offset ?? 0;
    const header = range === undefined ? undefined : `bytes=${offset}-${range.length === undefined ? "" : offset + range.length - 1}`;
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: header }));
      return out.Body as Readable;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      // A range starting at the end of the object is unsatisfiable for S3 but simply empty for us.
      if (err instanceof S3ServiceException && err.$metadata.httpStatusCode === 416) {
        return (await this.stat(key)) ? [] : undefined;
      }
      throw err;
    }
  }

  async stat(key: string): Promise<BlobInfo | undefined> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { key, size: out.ContentLength ?? 0, lastModified: out.LastModified ?? new Date(0) };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  async *list(prefix: string): AsyncIterable<BlobInfo> {
    let token: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const item of page.Contents ?? []) {
        if (item.Key === undefined) continue;
        yield { key: item.Key, size: item.Size ?? 0, lastModified: item.LastModified ?? new Date(0) };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async probeLocation(key: string): Promise<string> {
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: key }), { expiresIn: 600 });
  }

  async presignPut(key: string, ttlSeconds: number): Promise<PresignedPut> {
    const url = await getSignedUrl(this.client, new PutObjectCommand({ Bucket: this.bucket, Key: key }), {
      expiresIn: ttlSeconds,
    });
    return { url, headers: {} };
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
