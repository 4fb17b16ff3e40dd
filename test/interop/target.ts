import { createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { randomBytes } from "node:crypto";
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
  const withKey: Interceptor = (next) => (request) => {
    request.header.set("authorization", authorization);
    return next(request);
  };
  const storage = createClient(StorageService, createGrpcTransport({ baseUrl: mesh.url, interceptors: [withKey] }));
  const bytes = new TextEncoder().encode(objectText);
  const uploaded = await storage.upload(
    (async function* () {
      yield {
        part: {
          case: "header" as const,
          value: { filename: "hello.txt", mimeType: "text/plain", sizeBytes: BigInt(bytes.length), bucketClass: BucketClass.TEMP },
        },
      };
      yield { part: { case: "chunk" as const, value: bytes } };
    })(),
  );
  if (!uploaded.ref) throw new Error("upload returned no MediaRef");
  return {
    url: mesh.url,
    port: Number(new URL(mesh.url).port),
    authorization,
    object: { refId: uploaded.ref.id, text: objectText, sha256: uploaded.ref.sha256 },
    async close() {
      await mesh.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
