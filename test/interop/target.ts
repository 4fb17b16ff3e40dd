import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BucketClass } from "../../gen/mentatlab/v1/common_pb.js";
import { StorageService } from "../../gen/mentatlab/v1/storage_pb.js";
import { startEmbedded } from "../../services/mesh/embedded.js";

/** The embedded mesh every interop client talks to, with one stored object to download. */
export interface InteropTarget {
  /** Base URL of the one port. */
  readonly url: string;
  readonly port: number;
  /** `Bearer <admin key>`, for the `Authorization` header. */
  readonly authorization: string;
  /** A stored object: its id and exact content, for the server-streaming `Download`. */
  readonly object: { readonly refId: string; readonly text: string; readonly sha256: string };
  close(): Promise<void>;
}

/** The bytes every client downloads; small enough to arrive as one chunk. */
export const objectText = "hello from the interop suite\n";
/** Limits every GetUsage answers with in the embedded default configuration. */
export const expectedUsage = { userLimitBytes: "10000000000", workspaceLimitBytes: "100000000000" };

/**
 * Stores `objectText` through the unary resumable upload over Connect (HTTP/1.1), which every
 * runtime serves: client streaming needs HTTP/2 end to end.
 */
export async function storeInteropObject(baseUrl: string, authorization: string): Promise<InteropTarget["object"]> {
  const storage = createClient(StorageService, createConnectTransport({ baseUrl, httpVersion: "1.1" }));
  const asCaller = { headers: { authorization } };
  const bytes = new TextEncoder().encode(objectText);
  const { uploadId } = await storage.createUpload(
    { header: { filename: "hello.txt", mimeType: "text/plain", sizeBytes: BigInt(bytes.length), bucketClass: BucketClass.TEMP } },
    asCaller,
  );
  await storage.uploadChunk({ uploadId, offset: 0n, data: bytes }, asCaller);
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  const { ref } = await storage.completeUpload({ uploadId, sha256 }, asCaller);
  if (!ref) throw new Error("CompleteUpload returned no MediaRef");
  return { refId: ref.id, text: objectText, sha256: ref.sha256 };
}

/** Starts the embedded mesh (auth on) in a fresh data dir and stores one object through it. */
export async function startInteropTarget(options: { corsAllowedOrigins?: readonly string[] } = {}): Promise<InteropTarget> {
  const dataDir = await mkdtemp(join(tmpdir(), "interop-"));
  const mesh = await startEmbedded({
    port: 0,
    dataDir,
    env: {
      MENTATLAB_PRESIGN_SECRET: randomBytes(24).toString("hex"),
      MENTATLAB_CORS_ORIGINS: (options.corsAllowedOrigins ?? []).join(","),
    },
  });
  if (!mesh.adminKey) throw new Error("the embedded mesh created no development admin key");
  const authorization = `Bearer ${mesh.adminKey}`;
  const object = await storeInteropObject(mesh.url, authorization);
  return {
    url: mesh.url,
    port: Number(new URL(mesh.url).port),
    authorization,
    object,
    async close() {
      await mesh.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
