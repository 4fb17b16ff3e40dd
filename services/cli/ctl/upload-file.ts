import { basename, resolve } from "node:path";
import { stat } from "node:fs/promises";
import { BucketClass } from "../../../gen/mentatlab/v1/common_pb.js";
import type { UploadResult } from "../../storage/client/resumable-upload.js";
import { isRetryable } from "../../shared/retryable.js";
import { announcedRetry, continueCommand, type CommandContext } from "./context.js";
import { CliError } from "./exit-codes.js";
import { sha256OfFile } from "./file-chunks.js";
import { byteProgress } from "./progress.js";
import { resumableUpload } from "./resumable-upload.js";
import { streamingUpload } from "./streaming-upload.js";

export interface UploadFileOptions {
  /** Declared MIME type; empty lets the server sniff it. */
  readonly mimeType?: string | undefined;
  /** Store in the temp class (expires after an hour) instead of media. */
  readonly temp?: boolean | undefined;
  /** Use CreateUpload/UploadChunk/CompleteUpload even over HTTP/2. */
  readonly resumable?: boolean | undefined;
  /** Continue this earlier resumable upload. */
  readonly uploadId?: string | undefined;
}

/**
 * Uploads a local file with a progress bar: one client-streaming call over HTTP/2, the resumable
 * unary calls over HTTP/1.1 or when asked. Either way the server verifies the SHA-256 we computed.
 */
export async function uploadFile(ctx: CommandContext, file: string, options: UploadFileOptions = {}): Promise<UploadResult> {
  const path = resolve(ctx.io.cwd, file);
  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile()) throw new CliError(`${file} is not a readable file`);
  const header = {
    filename: basename(path),
    mimeType: options.mimeType ?? "",
    sizeBytes: BigInt(info.size),
    bucketClass: options.temp ? BucketClass.TEMP : BucketClass.MEDIA,
  };
  const name = basename(path);
  if (ctx.config.httpVersion === "1.1" || options.resumable || options.uploadId !== undefined) {
    const progress = byteProgress(ctx.io, `upload ${name}`, info.size);
    let uploadId: string | undefined;
    let finished = false;
    try {
      const result = await resumableUpload(ctx.clients.storage, path, {
        header,
        uploadId: options.uploadId,
        retry: announcedRetry(ctx, () => `upload of ${name}`),
        onStarted: (id) => (uploadId = id),
        onProgress: (done) => progress.update(done),
      });
      finished = true;
      return result;
    } finally {
      progress.stop();
      if (!finished && uploadId !== undefined) {
        await ctx.printer.note(`upload ${uploadId} stopped; to continue: ${continueCommand(ctx, [["--upload-id", uploadId]])}`);
      }
    }
  }
  const hashing = byteProgress(ctx.io, `hash ${name}`, info.size);
  let hashed = 0;
  const sha256 = await sha256OfFile(path, (n) => hashing.update((hashed += n))).finally(() => hashing.stop());
  const progress = byteProgress(ctx.io, `upload ${name}`, info.size);
  try {
    return await streamingUpload(ctx.clients.storage, path, { ...header, sha256 }, (sent) => progress.update(sent));
  } catch (err) {
    progress.stop();
    // One client-streaming call cannot pick up where it broke; the resumable calls can.
    if (isRetryable(err)) await ctx.printer.note(`upload of ${name} interrupted; to upload so that it resumes: ${continueCommand(ctx, [["--resumable"]])}`);
    throw err;
  } finally {
    progress.stop();
  }
}
