import { extname, resolve, sep } from "node:path";
import { realpath } from "node:fs/promises";
import { Code, ConnectError } from "@connectrpc/connect";

const extensionsByMime: Readonly<Record<string, string>> = {
  "image/png": ".png",
  "image/jpeg": ".jpg",
  "image/webp": ".webp",
  "image/gif": ".gif",
  "image/avif": ".avif",
  "image/tiff": ".tiff",
  "audio/wav": ".wav",
  "audio/x-wav": ".wav",
  "audio/wave": ".wav",
  "audio/mpeg": ".mp3",
  "audio/ogg": ".ogg",
  "audio/flac": ".flac",
  "video/mp4": ".mp4",
  "video/webm": ".webm",
  "video/x-matroska": ".mkv",
  "video/quicktime": ".mov",
  "text/plain": ".txt",
  "application/json": ".json",
};

/**
 * File extension for a downloaded input: tools such as sox and ffmpeg pick their demuxer by it, so the
 * uploader's file name is used when it has one, else the MIME type's usual extension.
 */
export function extensionFor(mimeType: string, filename: string): string {
  const fromName = extname(filename).toLowerCase();
  if (/^\.[a-z0-9]{1,8}$/.test(fromName)) return fromName;
  return extensionsByMime[mimeType.toLowerCase()] ?? ".bin";
}

/**
 * Resolves a path the agent handed over and checks it lies under the shared volume, so an agent cannot
 * make the sidecar upload files from elsewhere in the pod. Relative paths are taken from `base`.
 */
export async function pathUnder(sharedDir: string, path: string, base = sharedDir): Promise<string> {
  const root = await realpath(sharedDir);
  let resolved: string;
  try {
    resolved = await realpath(resolve(base, path));
  } catch {
    throw new ConnectError(`output file ${path} does not exist; write it under ${sharedDir} first`, Code.InvalidArgument);
  }
  if (resolved !== root && !resolved.startsWith(root + sep)) {
    throw new ConnectError(`output file ${path} is outside the shared directory ${sharedDir}`, Code.PermissionDenied);
  }
  return resolved;
}
