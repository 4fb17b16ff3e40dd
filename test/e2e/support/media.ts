import { createHash } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import type { MediaRef } from "../../../gen/mentatlab/v1/common_pb.js";
import { UploadRequestSchema, type UploadRequest } from "../../../gen/mentatlab/v1/storage_pb.js";
import type { MeshClients } from "./clients.js";

/** Uploads bytes in 64 KiB chunks with the client-streaming Upload, as a gRPC client would. */
export async function uploadBytes(clients: MeshClients, bytes: Uint8Array, filename: string, mimeType: string): Promise<MediaRef> {
  async function* requests(): AsyncGenerator<UploadRequest> {
    yield create(UploadRequestSchema, { part: { case: "header", value: { filename, mimeType, sizeBytes: BigInt(bytes.length) } } });
    for (let offset = 0; offset < bytes.length; offset += 64 * 1024) {
      yield create(UploadRequestSchema, { part: { case: "chunk", value: bytes.subarray(offset, offset + 64 * 1024) } });
    }
  }
  const { ref } = await clients.storage.upload(requests());
  if (!ref) throw new Error("upload returned no ref");
  return ref;
}

/** Downloads an object whole (test media is small) and checks it against its ref's size and sha256. */
export async function downloadVerified(clients: MeshClients, ref: MediaRef): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const message of clients.storage.download({ refId: ref.id })) {
    if (message.part.case === "chunk") parts.push(message.part.value.data);
  }
  const bytes = Buffer.concat(parts);
  if (BigInt(bytes.length) !== ref.sizeBytes) throw new Error(`downloaded ${bytes.length} bytes, ref says ${ref.sizeBytes}`);
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  if (sha256 !== ref.sha256) throw new Error(`downloaded sha256 ${sha256}, ref says ${ref.sha256}`);
  return bytes;
}
