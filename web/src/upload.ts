import { Code, ConnectError } from "@connectrpc/connect";
import { BucketClass, type MediaRef } from "../../gen/mentatlab/v1/common_pb.js";
import type { UploadSource } from "../../services/storage/client/ordered-hasher.js";
import { chunkBytesFor, ResumableUpload } from "../../services/storage/client/resumable-upload.js";
import type { Api } from "./api.js";
import { Sha256 } from "./sha256.js";

const maxRetries = 5;

/**
 * Uploads a File with the resumable unary calls (browsers cannot stream a request body over
 * Connect). Only one chunk is in memory at a time; after a failed chunk it asks the server how far
 * it got and continues from there. The SHA-256 of the bytes read goes with CompleteUpload, so the
 * server verifies that what it stored is what the browser read.
 */
export async function uploadFile(api: Api, file: File, temp: boolean, onProgress: (fraction: number) => void): Promise<MediaRef> {
  const created = await api.storage.createUpload({
    header: {
      filename: file.name,
      mimeType: file.type,
      sizeBytes: BigInt(file.size),
      bucketClass: temp ? BucketClass.TEMP : BucketClass.MEDIA,
    },
  });
  const upload = new ResumableUpload(api.storage, created.uploadId, blobSource(file), chunkBytesFor(created.recommendedChunkBytes), new Sha256());
  let offset = Number(created.committedOffset);
  let failures = 0;
  for (;;) {
    try {
      await upload.sendFrom(offset, (committed) => {
        failures = 0;
        onProgress(file.size === 0 ? 1 : committed / file.size);
      });
      break;
    } catch (err) {
      if (!retryable(err) || ++failures > maxRetries) throw err;
      await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** failures));
      offset = await upload.committedOffset();
    }
  }
  return (await upload.complete()).ref;
}

function blobSource(blob: Blob): UploadSource {
  return {
    size: blob.size,
    read: async (offset, length) => new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer()),
  };
}

// fetch() failures surface as Unknown in connect-web; both mean the connection, not the request, failed.
function retryable(err: unknown): boolean {
  const code = ConnectError.from(err).code;
  return code === Code.Unavailable || code === Code.Unknown || code === Code.DeadlineExceeded;
}
