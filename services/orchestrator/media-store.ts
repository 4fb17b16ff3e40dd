import type { Client } from "@connectrpc/connect";
import type { BucketClass, MediaConstraints, MediaRef } from "../../gen/mentatlab/v1/common_pb.js";
import type { StorageService } from "../../gen/mentatlab/v1/storage_pb.js";

/** What the orchestrator declares about bytes it stores (offloaded binary, agent file outputs). */
export interface MediaUploadHeader {
  readonly filename: string;
  /** Empty trusts the type sniffed from the bytes. */
  readonly mimeType: string;
  readonly sizeBytes: bigint;
  readonly bucketClass: BucketClass;
  readonly constraints?: MediaConstraints;
}

/**
 * The slice of storage the orchestrator needs. Every call carries the node's run token, so storage
 * charges and scopes the bytes to the run's user and workspace.
 */
export interface MediaStore {
  /** Stores streamed bytes (consumed with backpressure, never buffered whole). */
  upload(data: AsyncIterable<Uint8Array>, header: MediaUploadHeader, runToken: string): Promise<MediaRef>;
  stat(refId: string, runToken: string): Promise<MediaRef>;
}

const authorization = (runToken: string) => ({ headers: { authorization: `Bearer ${runToken}` } });

/** MediaStore over the StorageService: a client-streaming Upload (header, then chunks) and Stat. */
export function storageMediaStore(storage: Client<typeof StorageService>): MediaStore {
  return {
    async upload(data, header, runToken) {
      async function* requests() {
        yield { part: { case: "header" as const, value: { ...header, sha256: "" } } };
        for await (const chunk of data) yield { part: { case: "chunk" as const, value: chunk } };
      }
      const response = await storage.upload(requests(), authorization(runToken));
      if (!response.ref) throw new Error("storage answered an upload without a MediaRef");
      return response.ref;
    },
    async stat(refId, runToken) {
      const response = await storage.stat({ refId }, authorization(runToken));
      if (!response.ref) throw new Error(`storage answered Stat(${refId}) without a MediaRef`);
      return response.ref;
    },
  };
}
