import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import type { StorageService, UploadHeaderSchema, UploadRequestSchema } from "../../../gen/mentatlab/v1/storage_pb.js";
import type { UploadResult } from "../../storage/client/resumable-upload.js";
import { fileChunks } from "./file-chunks.js";

const chunkBytes = 256 * 1024;

/**
 * Uploads a file in one client-streaming Upload call (HTTP/2). The header travels first, so the
 * SHA-256 the server verifies against must be known before the bytes: the caller hashes the file
 * in a first pass (streamed, like this one).
 */
export async function streamingUpload(
  storage: Client<typeof StorageService>,
  path: string,
  header: MessageInitShape<typeof UploadHeaderSchema>,
  onProgress?: (sent: number) => void,
): Promise<UploadResult> {
  async function* requests(): AsyncGenerator<MessageInitShape<typeof UploadRequestSchema>> {
    yield { part: { case: "header", value: header } };
    let sent = 0;
    for await (const chunk of fileChunks(path, 0, chunkBytes)) {
      yield { part: { case: "chunk", value: chunk } };
      sent += chunk.byteLength;
      onProgress?.(sent);
    }
  }
  const response = await storage.upload(requests());
  if (!response.ref) throw new Error("server finished the upload without a MediaRef");
  return { ref: response.ref, deduplicated: response.deduplicated };
}
