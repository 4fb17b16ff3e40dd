import { Code, ConnectError } from "@connectrpc/connect";
import { fileTypeFromBuffer } from "file-type";
import { mediaKindOf } from "./media-kind.js";

/** Bytes file-type needs to recognise every format it knows. */
export const SNIFF_BYTES = 4100;

const GENERIC_BINARY = "application/octet-stream";

// Names browsers and tools use for the same formats; compared after mapping to one spelling.
const ALIASES: Record<string, string> = {
  "audio/x-wav": "audio/wav",
  "audio/wave": "audio/wav",
  "audio/vnd.wave": "audio/wav",
  "audio/mp3": "audio/mpeg",
  "audio/x-mp3": "audio/mpeg",
  "audio/x-flac": "audio/flac",
  "audio/x-m4a": "audio/mp4",
  "audio/m4a": "audio/mp4",
  "video/x-m4v": "video/mp4",
  "image/jpg": "image/jpeg",
  "image/pjpeg": "image/jpeg",
  "application/ogg": "audio/ogg",
  "audio/opus": "audio/ogg",
};

// Containers that hold audio or video alike: the bytes cannot tell which one the uploader meant.
const SAME_CONTAINER: readonly (readonly string[])[] = [
  ["audio/mp4", "video/mp4"],
  ["audio/ogg", "video/ogg"],
  ["audio/webm", "video/webm"],
  ["audio/x-matroska", "video/x-matroska", "video/matroska"],
];

/** Lower-case base type in its canonical spelling, parameters dropped. */
export function canonicalMimeType(mimeType: string): string {
  const base = mimeType.split(";")[0]!.trim().toLowerCase();
  return ALIASES[base] ?? base;
}

function sameFormat(declared: string, sniffed: string): boolean {
  if (declared === sniffed) return true;
  if (SAME_CONTAINER.some((group) => group.includes(declared) && group.includes(sniffed))) return true;
  // XML dialects (SVG, RSS, ...) sniff as plain XML.
  return sniffed === "application/xml" && (declared.endsWith("+xml") || declared === "text/xml");
}

/** Valid UTF-8 without NUL bytes. `complete` says whether `head` is the whole object. */
export function looksLikeText(head: Uint8Array, complete: boolean): boolean {
  if (head.includes(0)) return false;
  try {
    // Streaming mode tolerates a multi-byte character cut at the end of an incomplete head.
    new TextDecoder("utf-8", { fatal: true }).decode(head, { stream: !complete });
    return true;
  } catch {
    return false;
  }
}

function mismatch(declared: string, actual: string): ConnectError {
  return new ConnectError(
    `declared mime_type "${declared}" does not match the content, which is "${actual}"; declare "${actual}" or leave mime_type empty`,
    Code.InvalidArgument,
  );
}

/**
 * The object's real MIME type, from its first bytes and the declared type. Magic bytes win; text has
 * none, so valid UTF-8 is text/plain unless a text-like type (text/*, JSON, XML) was declared.
 * Unrecognised binary keeps a declared type only when it is not image/audio/video/text, which would be
 * recognisable. Throws INVALID_ARGUMENT naming both types when they disagree.
 */
export async function resolveMimeType(head: Uint8Array, declaredMimeType: string, complete: boolean): Promise<string> {
  const declared = canonicalMimeType(declaredMimeType);
  const generic = declared === "" || declared === GENERIC_BINARY;
  const sniffed = await fileTypeFromBuffer(head);
  if (sniffed) {
    const actual = canonicalMimeType(sniffed.mime);
    if (generic || sameFormat(declared, actual)) return generic ? actual : declared;
    throw mismatch(declaredMimeType, actual);
  }
  if (looksLikeText(head, complete)) {
    if (declared === "") return "text/plain";
    if (declared === GENERIC_BINARY || mediaKindOf(declared) === "text" || declared.endsWith("+xml")) return declared;
    throw mismatch(declaredMimeType, "text/plain");
  }
  if (generic) return GENERIC_BINARY;
  if (mediaKindOf(declared) !== "other") throw mismatch(declaredMimeType, GENERIC_BINARY);
  return declared;
}
