import { Code, ConnectError } from "@connectrpc/connect";
import { codeToHttpStatus } from "@connectrpc/connect/protocol-connect";
import { StorageService } from "../../gen/mentatlab/v1/storage_pb.js";
import { permissionRefusal } from "../shared/auth/method-permission.js";
import type { HttpRoute, HttpRouteContext } from "../shared/http-route.js";
import type { BlobStore } from "./blob-store.js";
import { cacheMaxAgeSeconds, mediaKindOf } from "./media-kind.js";
import type { ObjectHolds } from "./object-holds.js";
import type { RefCache } from "./ref-cache.js";
import { rechunk } from "./rechunk.js";
import { lookupRef } from "./storage-service.js";
import type { UrlSigner } from "./url-signer.js";

export const MEDIA_PATH_PREFIX = "/media/";

interface MediaRouteDeps {
  readonly store: BlobStore;
  readonly refs: RefCache;
  readonly holds: ObjectHolds;
  readonly signer: UrlSigner;
}

type Range = { readonly start: number; readonly end: number } | "unsatisfiable" | undefined;

/** One `bytes=` range against `size`; multiple ranges are ignored (the whole object is sent, as RFC 9110 allows). */
export function parseRange(header: string | null, size: number): Range {
  const match = header ? /^bytes=(\d*)-(\d*)$/.exec(header.trim()) : null;
  if (!match) return undefined;
  const [, from, to] = match;
  if (from === "" && to === "") return undefined;
  if (from === "") {
    const suffix = Number(to);
    if (suffix === 0 || size === 0) return "unsatisfiable";
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(from);
  if (start >= size) return "unsatisfiable";
  const end = to === "" ? size - 1 : Math.min(Number(to), size - 1);
  return end < start ? undefined : { start, end };
}

/**
 * The workspace a path segment names, when the segment is spelled exactly as `mediaPath` writes it;
 * another encoding of the same name (`%61cme` for `acme`, lower-case escapes) is no valid link.
 */
function canonicalWorkspace(segment: string): string | undefined {
  let workspace: string;
  try {
    workspace = decodeURIComponent(segment);
  } catch {
    return undefined;
  }
  return encodeURIComponent(workspace) === segment ? workspace : undefined;
}

/** The presigned `expires`/`sig` pair, absent for a bearer request, malformed when half or doubled. */
function presignedQueryOf(query: URLSearchParams): { expires: string; sig: string } | undefined | "malformed" {
  const expires = query.getAll("expires");
  const sig = query.getAll("sig");
  if (expires.length === 0 && sig.length === 0) return undefined;
  if (expires.length !== 1 || sig.length !== 1) return "malformed";
  return { expires: expires[0]!, sig: sig[0]! };
}

function text(status: number, body: string, headers: Record<string, string> = {}): Response {
  return new Response(body, { status, headers: { "content-type": "text/plain; charset=utf-8", ...headers } });
}

/**
 * Plain-HTTP GET/HEAD of objects at `/media/{workspace}/{refId}`, for `<img>`/`<audio>`/`<video>` tags and
 * CDNs. Authorised by a presigned `expires`+`sig` query, or by a bearer principal of the same workspace
 * holding the permission Download declares. Range requests, ETag = sha256, Cache-Control by media kind.
 */
export function createMediaRoutes(deps: MediaRouteDeps): HttpRoute[] {
  const handle = async (request: Request, context: HttpRouteContext): Promise<Response> => {
    try {
      return await serve(request, context);
    } catch (err) {
      // A backend fault is already a ConnectError (UNAVAILABLE, naming object storage): say so, not 500.
      if (err instanceof ConnectError) return text(codeToHttpStatus(err.code), `${err.rawMessage}\n`);
      throw err;
    }
  };
  const serve = async (request: Request, context: HttpRouteContext): Promise<Response> => {
    const url = new URL(request.url);
    const parts = url.pathname.slice(MEDIA_PATH_PREFIX.length).split("/");
    if (parts.length !== 2 || !parts[0] || !parts[1]) return text(404, "not found: use /media/{workspace}/{refId}\n");
    const workspace = canonicalWorkspace(parts[0]);
    if (workspace === undefined) return text(404, "not found\n");
    const refId = parts[1];

    const presignedQuery = presignedQueryOf(url.searchParams);
    if (presignedQuery === "malformed") return text(403, "the link is invalid: send expires and sig once each, as the link was issued\n");
    if (presignedQuery) {
      if (!deps.signer.verify(workspace, refId, presignedQuery.expires, presignedQuery.sig)) {
        return text(403, "the link is invalid or has expired; ask for a new one\n");
      }
    } else if (!context.principal) {
      return text(401, "send a bearer key or use a presigned URL\n", { "www-authenticate": "Bearer" });
    } else {
      // A plain GET hands out what Download does, so it needs what Download needs.
      const refusal = permissionRefusal(context.principal, StorageService.method.download);
      if (refusal) return text(403, `${refusal.rawMessage}\n`);
      // Another workspace's object is reported exactly like a missing one.
      if (context.principal.workspace !== workspace) return text(404, "not found\n");
    }

    let stored;
    try {
      stored = await lookupRef(deps.refs, deps.holds, workspace, refId);
    } catch (err) {
      if (err instanceof ConnectError && err.code === Code.NotFound) return text(404, "not found\n");
      throw err;
    }
    const { ref, blobKey } = stored;
    const size = Number(ref.sizeBytes);
    const etag = `"${ref.sha256}"`;
    const maxAge = cacheMaxAgeSeconds(mediaKindOf(ref.mimeType));
    const headers: Record<string, string> = {
      "content-type": ref.mimeType,
      etag,
      "accept-ranges": "bytes",
      // A presigned link is meant for sharing (CDNs); a bearer-authorised response is for that caller only.
      "cache-control": presignedQuery
        ? `public, max-age=${Math.max(0, Math.min(maxAge, Number(presignedQuery.expires) - Math.floor(Date.now() / 1000)))}`
        : `private, max-age=${maxAge}`,
      "x-content-type-options": "nosniff",
    };
    if (
      request.headers
        .get("if-none-match")
        ?.split(",")
        .some((t) => t.trim() === etag)
    ) {
      return new Response(null, { status: 304, headers });
    }
    const range = parseRange(request.headers.get("range"), size);
    if (range === "unsatisfiable") {
      return new Response(null, { status: 416, headers: { ...headers, "content-range": `bytes */${size}` } });
    }
    const start = range?.start ?? 0;
    const length = range ? range.end - range.start + 1 : size;
    headers["content-length"] = String(length);
    if (range) headers["content-range"] = `bytes ${range.start}-${range.end}/${size}`;
    const status = range ? 206 : 200;
    if (request.method === "HEAD") return new Response(null, { status, headers });

    const body = await deps.store.read(blobKey, { offset: start, length });
    if (!body) return text(404, "not found\n");
    const iterator = rechunk(body, 64 * 1024);
    // Pull-based: the next piece is read only when the client has taken the previous one.
    const stream = new ReadableStream<Uint8Array>(
      {
        async pull(controller) {
          const next = await iterator.next();
          if (next.done) controller.close();
          else controller.enqueue(next.value);
        },
        async cancel() {
          await iterator.return(undefined);
        },
      },
      { highWaterMark: 0 },
    );
    context.signal.addEventListener("abort", () => void stream.cancel().catch(() => undefined), { once: true });
    return new Response(stream, { status, headers });
  };
  return [
    { method: "GET", pathPrefix: MEDIA_PATH_PREFIX, handle },
    { method: "HEAD", pathPrefix: MEDIA_PATH_PREFIX, handle },
  ];
}
