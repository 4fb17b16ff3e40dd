/**
 * The `codecs` parameter MediaSource needs (`addSourceBuffer` refuses a bare `video/mp4`), read from
 * the first bytes of a fragmented MP4 or WebM stream, since a stream's MIME type rarely names them.
 * Returns the full type with codecs, undefined while more bytes are needed, or "" when the head was
 * read and names no codec this knows.
 */
export function sniffSourceBufferType(mimeType: string, head: Uint8Array): string | undefined {
  if (/codecs\s*=/i.test(mimeType)) return mimeType;
  const base = mimeType.split(";")[0]?.trim().toLowerCase() ?? "";
  const initSegment = base.endsWith("/mp4") ? mp4Moov(head) : base.endsWith("/webm") ? webmBeforeCluster(head) : head;
  if (!initSegment) return head.byteLength >= SNIFF_LIMIT ? "" : undefined;
  const codecs = base.endsWith("/mp4") ? mp4Codecs(initSegment) : base.endsWith("/webm") ? webmCodecs(initSegment) : [];
  return codecs.length > 0 ? `${base}; codecs="${codecs.join(",")}"` : "";
}

/** An init segment (ftyp + moov, or EBML header + Tracks) fits well within this. */
export const SNIFF_LIMIT = 64 * 1024;

/** The whole top-level moov box, once it has arrived. */
function mp4Moov(head: Uint8Array): Uint8Array | undefined {
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  for (let offset = 0; offset + 8 <= head.byteLength;) {
    const size = view.getUint32(offset);
    if (size < 8) return undefined;
    if (indexOfTag(head.subarray(offset + 4, offset + 8), "moov") === 0)
      return offset + size <= head.byteLength ? head.subarray(offset, offset + size) : undefined;
    offset += size;
  }
  return undefined;
}

function mp4Codecs(moov: Uint8Array): string[] {
  const codecs: string[] = [];
  const avcC = indexOfTag(moov, "avcC");
  // avcC: version, profile, profile compatibility, level; the codec string is their hex.
  if (avcC >= 0 && avcC + 8 <= moov.byteLength) codecs.push(`avc1.${hex(moov[avcC + 5])}${hex(moov[avcC + 6])}${hex(moov[avcC + 7])}`);
  if (indexOfTag(moov, "av1C") >= 0) codecs.push("av01.0.05M.08");
  if (indexOfTag(moov, "vpcC") >= 0) codecs.push("vp09.00.10.08");
  if (indexOfTag(moov, "mp4a") >= 0) codecs.push("mp4a.40.2");
  if (indexOfTag(moov, "Opus") >= 0) codecs.push("opus");
  return codecs;
}

/** Everything before the first Cluster: the EBML header, Segment info and Tracks. */
function webmBeforeCluster(head: Uint8Array): Uint8Array | undefined {
  const cluster = indexOfTag(head, "\x1f\x43\xb6\x75");
  return cluster >= 0 ? head.subarray(0, cluster) : undefined;
}

/** Matroska CodecID strings, as they appear in a WebM Tracks element. */
const webmCodecIds: ReadonlyArray<readonly [string, string]> = [
  ["V_VP9", "vp9"],
  ["V_VP8", "vp8"],
  ["V_AV1", "av01.0.05M.08"],
  ["A_OPUS", "opus"],
  ["A_VORBIS", "vorbis"],
];

function webmCodecs(head: Uint8Array): string[] {
  return webmCodecIds.filter(([id]) => indexOfTag(head, id) >= 0).map(([, codec]) => codec);
}

function indexOfTag(bytes: Uint8Array, tag: string): number {
  outer: for (let i = 0; i + tag.length <= bytes.byteLength; i++) {
    for (let j = 0; j < tag.length; j++) if (bytes[i + j] !== tag.charCodeAt(j)) continue outer;
    return i;
  }
  return -1;
}

function hex(byte: number | undefined): string {
  return (byte ?? 0).toString(16).padStart(2, "0").toUpperCase();
}
