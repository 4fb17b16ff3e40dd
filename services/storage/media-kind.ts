import type { SizeLimits } from "./config.js";

/** The broad kind of a MIME type, which decides size limits, chunk sizes and caching. */
export type MediaKind = keyof SizeLimits;

const TEXT_LIKE = new Set(["application/json", "application/xml", "application/x-ndjson", "application/yaml"]);

export function mediaKindOf(mimeType: string): MediaKind {
  const type = mimeType.split(";")[0]!.trim().toLowerCase();
  if (type.startsWith("image/")) return "image";
  if (type.startsWith("audio/")) return "audio";
  if (type.startsWith("video/")) return "video";
  if (type.startsWith("text/") || TEXT_LIKE.has(type) || type.endsWith("+json")) return "text";
  return "other";
}

const CHUNK_BYTES: Partial<Record<MediaKind, number>> = { audio: 8 * 1024, video: 64 * 1024, text: 1024 };

/** Download chunk size when the client asks for none. */
export function defaultChunkBytes(kind: MediaKind, otherwise: number): number {
  return CHUNK_BYTES[kind] ?? otherwise;
}

const MAX_AGE_SECONDS: Partial<Record<MediaKind, number>> = { image: 3600, audio: 1800, video: 7200 };

/** How long a CDN or browser may cache an object of this kind, in seconds. */
export function cacheMaxAgeSeconds(kind: MediaKind): number {
  return MAX_AGE_SECONDS[kind] ?? 300;
}
