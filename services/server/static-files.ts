import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { extname, join, normalize, resolve, sep } from "node:path";
import { Readable } from "node:stream";
import type { HttpRoute } from "../shared/http-route.js";

const contentTypes: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".map": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".ico": "image/x-icon",
  ".txt": "text/plain; charset=utf-8",
  ".wasm": "application/wasm",
  ".woff2": "font/woff2",
};

/**
 * Serves the files under `dir` at `/` (a folder answers with its `index.html`). It is the
 * shortest prefix, so every other route wins over it.
 */
export function staticFilesRoute(dir: string): HttpRoute {
  const root = resolve(dir);
  return {
    method: "GET",
    pathPrefix: "/",
    async handle(request) {
      const path = fileFor(root, new URL(request.url).pathname);
      const file = path === undefined ? undefined : ((await regularFile(path)) ?? (await regularFile(join(path, "index.html"))));
      if (file === undefined) {
        return new Response("not found\n", { status: 404, headers: { "content-type": "text/plain; charset=utf-8" } });
      }
      const body = Readable.toWeb(createReadStream(file.path)) as ReadableStream<Uint8Array>;
      return new Response(body, {
        headers: {
          "content-type": contentTypes[extname(file.path).toLowerCase()] ?? "application/octet-stream",
          "content-length": String(file.size),
          "cache-control": "no-cache",
        },
      });
    },
  };
}

/** The file a URL path names inside `root`, or undefined when it would escape it. */
function fileFor(root: string, pathname: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return undefined;
  }
  if (decoded.includes("\0")) return undefined;
  const candidate = join(root, normalize(decoded));
  return candidate === root || candidate.startsWith(root + sep) ? candidate : undefined;
}

async function regularFile(path: string): Promise<{ path: string; size: number } | undefined> {
  const info = await stat(path).catch(() => undefined);
  return info?.isFile() ? { path, size: info.size } : undefined;
}
