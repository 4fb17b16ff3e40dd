import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { basename } from "node:path";
import { pipeline } from "node:stream/promises";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { BucketClass, type MediaConstraints, type MediaRef } from "../gen/mentatlab/v1/common_pb.js";
import { UploadRequestSchema, type StorageService, type UploadRequest } from "../gen/mentatlab/v1/storage_pb.js";
import { withRetries, type Backoff } from "./retry.js";

export interface UploadFileOptions {
  /** File name shown for the object; defaults to the file's own name. */
  readonly filename?: string;
  /** Declared MIME type; empty lets storage sniff it. */
  readonly mimeType?: string;
  readonly bucketClass?: BucketClass;
  readonly constraints?: MediaConstraints;
  readonly attempts: number;
  readonly backoff: Backoff;
  readonly signal?: AbortSignal;
}

/** Chunk size read from disk and sent per Upload message: large enough to amortise framing, well under the 4 MiB cap. */
const uploadChunkBytes = 256 * 1024;

/** Lower-case hex sha256 of a file, read as a stream. */
export async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(path, { highWaterMark: uploadChunkBytes }), hash);
  return hash.digest("hex");
}

/**
 * Uploads a file from disk with one Upload client stream, never holding it whole in memory. The sha256 is
 * computed first and declared in the header, so storage verifies the bytes end to end and keeps nothing
 * on a mismatch; a dropped connection restarts the upload from the file.
 */
export async function uploadFile(storage: Client<typeof StorageService>, path: string, options: UploadFileOptions): Promise<MediaRef> {
  const { size } = await stat(path);
  const sha256 = await sha256OfFile(path);
  return withRetries(options.attempts, options.backoff, options.signal, async () => {
    const response = await storage.upload(requests(), { signal: options.signal });
    const ref = response.ref;
    if (!ref) throw new ConnectError(`storage returned no ref for ${path}`, Code.Internal);
    if (ref.sha256 !== sha256) {
      throw new ConnectError(`storage stored ${path} as sha256 ${ref.sha256}, expected ${sha256}`, Code.DataLoss);
    }
    return ref;
  });

  async function* requests(): AsyncGenerator<UploadRequest> {
    yield create(UploadRequestSchema, {
      part: {
        case: "header",
        value: {
          filename: options.filename ?? basename(path),
          mimeType: options.mimeType ?? "",
          sizeBytes: BigInt(size),
          sha256,
          bucketClass: options.bucketClass ?? BucketClass.MEDIA,
          constraints: options.constraints,
        },
      },
    });
    for await (const chunk of createReadStream(path, { highWaterMark: uploadChunkBytes })) {
      yield create(UploadRequestSchema, { part: { case: "chunk", value: chunk as Buffer } });
    }
  }
}
