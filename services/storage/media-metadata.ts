import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { imageSize } from "image-size";
import { type MediaConstraints, type MediaMetadata, MediaMetadataSchema } from "../../gen/mentatlab/v1/common_pb.js";
import type { BlobStore, ByteSource } from "./blob-store.js";
import { ceilingVariables, type MediaCeilings } from "./config.js";
import { boxLayoutProblem } from "./isobmff-boxes.js";
import { mediaKindOf } from "./media-kind.js";

const run = promisify(execFile);

/** Image headers (dimensions) sit near the start; JPEG EXIF can push them past the sniffing head. */
const IMAGE_HEAD_BYTES = 512 * 1024;

interface ProbeStream {
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  sample_rate?: string;
  channels?: number;
  avg_frame_rate?: string;
  r_frame_rate?: string;
  /** Samples the container declares (MP4/MOV sample tables), when it declares them. */
  nb_frames?: string;
  /** Packets the demuxer could actually read (`-count_packets`). */
  nb_read_packets?: string;
}
interface ProbeOutput {
  streams?: ProbeStream[];
  format?: { format_name?: string; duration?: string; bit_rate?: string };
}

/**
 * What the probe rejects with: a spawn error (`code` a string), a failed run with its output, or the
 * SyntaxError of output that was not JSON (no `code`).
 */
interface ProbeError extends Error {
  readonly code?: string | number | null;
  readonly killed?: boolean;
  readonly stderr?: string;
}

/**
 * The client's error for a failed ffprobe run, saying what is wrong with the bytes. ffprobe names its
 * input in its messages, and that input is a server path or a signed object-store URL: neither may
 * reach a client, so it is cut out, and the command line (in `message`) is never quoted.
 */
function probeFailure(err: ProbeError, location: string, mimeType: string, timeoutMs: number): ConnectError {
  if (typeof err.code === "string") {
    console.error(`storage: ffprobe could not be started (set FFPROBE_PATH): ${err.message}`);
    return new ConnectError("media metadata cannot be read right now: the server's ffprobe could not be started", Code.Unavailable);
  }
  // Killed at the server's limit: a large file on slow storage, not proof that the bytes are bad.
  if (err.killed) {
    return new ConnectError(
      `reading the ${mimeType} content's metadata took longer than the server allows (${timeoutMs / 1000} s, STORAGE_FFPROBE_TIMEOUT_SECONDS); nothing was stored`,
      Code.DeadlineExceeded,
    );
  }
  const reason = (err.stderr ?? "")
    .split("\n")
    // "[wav @ 0x55d…] no 'data' tag found": the demuxer's address means nothing to the client either.
    .map((line) =>
      line
        .replaceAll(location, "")
        .replace(/^\s*:\s*/, "")
        .replace(/^\[[^\]]* @ 0x[0-9a-f]+\]\s*/, "")
        .trim(),
    )
    .find((line) => line !== "");
  const silent = typeof err.code === "number" ? `ffprobe exited with code ${err.code}` : "ffprobe described no stream in it";
  const detail = reason ?? silent;
  return new ConnectError(`the ${mimeType} content could not be decoded: ${detail}`, Code.InvalidArgument);
}

function ratio(text: string | undefined): number {
  const [num, den] = (text ?? "0/0").split("/").map(Number);
  return num && den ? num / den : 0;
}

/** Reads media facts from stored bytes: image-size for images, ffprobe for audio and video. */
export class MetadataExtractor {
  constructor(
    private readonly store: BlobStore,
    private readonly ffprobePath: string,
    private readonly probeTimeoutMs = 60_000,
  ) {}

  async extract(key: string, mimeType: string): Promise<MediaMetadata> {
    switch (mediaKindOf(mimeType)) {
      case "image":
        return this.image(key, mimeType);
      case "audio":
      case "video":
        return this.probe(key, mimeType);
      default:
        return create(MediaMetadataSchema);
    }
  }

  private async image(key: string, mimeType: string): Promise<MediaMetadata> {
    const body = await this.store.read(key, { offset: 0, length: IMAGE_HEAD_BYTES });
    const head = body ? await collectBounded(body) : undefined;
    const subtype = mimeType.split("/")[1] ?? "";
    try {
      const size = imageSize(head ?? new Uint8Array());
      return create(MediaMetadataSchema, { width: size.width, height: size.height, codec: size.type ?? subtype, container: subtype });
    } catch (err) {
      throw new ConnectError(`the ${mimeType} image could not be decoded: ${(err as Error).message}`, Code.InvalidArgument);
    }
  }

  /** ISO BMFF boxes against the stored bytes, streamed: ffprobe misses a cut inside the last sample. */
  private async boxProblem(key: string): Promise<string | undefined> {
    const body = await this.store.read(key);
    return body ? boxLayoutProblem(body) : undefined;
  }

  private async probe(key: string, mimeType: string): Promise<MediaMetadata> {
    const location = await this.store.probeLocation(key);
    let output: ProbeOutput;
    try {
      const { stdout } = await run(
        this.ffprobePath,
        // -count_packets demuxes every packet (reading, not decoding): samples the container
        // declares but the bytes do not hold show up as missing packets.
        ["-v", "error", "-count_packets", "-print_format", "json", "-show_format", "-show_streams", location],
        { maxBuffer: 4 * 1024 * 1024, timeout: this.probeTimeoutMs },
      );
      output = JSON.parse(stdout) as ProbeOutput;
    } catch (err) {
      // ffprobe cannot tell a store that stopped answering from bad bytes; the store can (UNAVAILABLE).
      await this.store.stat(key);
      throw probeFailure(err as ProbeError, location, mimeType, this.probeTimeoutMs);
    }
    const streams = output.streams ?? [];
    const formats = (output.format?.format_name ?? "").split(",");
    const problem = missingSamples(streams) ?? (formats.includes("mp4") ? await this.boxProblem(key) : undefined);
    if (problem) throw new ConnectError(`the ${mimeType} content is not whole: ${problem}; upload the complete file`, Code.InvalidArgument);
    const video = streams.find((s) => s.codec_type === "video");
    const audio = streams.find((s) => s.codec_type === "audio");
    const main = mediaKindOf(mimeType) === "video" ? (video ?? audio) : (audio ?? video);
    const subtype = mimeType.split("/")[1] ?? "";
    return create(MediaMetadataSchema, {
      width: video?.width ?? 0,
      height: video?.height ?? 0,
      durationSeconds: Number(output.format?.duration ?? 0) || 0,
      codec: main?.codec_name ?? "",
      sampleRate: Number(audio?.sample_rate ?? 0) || 0,
      channels: audio?.channels ?? 0,
      frameRate: video ? ratio(video.avg_frame_rate) || ratio(video.r_frame_rate) : 0,
      bitRate: BigInt(Math.round(Number(output.format?.bit_rate ?? 0) || 0)),
      container: formats.includes(subtype) ? subtype : (formats[0] ?? ""),
    });
  }
}

/** The first stream whose declared samples are not all in the bytes, as a sentence. */
function missingSamples(streams: readonly ProbeStream[]): string | undefined {
  for (const [index, stream] of streams.entries()) {
    const declared = Number(stream.nb_frames ?? 0);
    const read = Number(stream.nb_read_packets ?? declared);
    if (declared > 0 && read < declared) {
      return `stream ${index} (${stream.codec_name ?? stream.codec_type ?? "unknown"}) declares ${declared} samples but only ${read} are in the file`;
    }
  }
  return undefined;
}

async function collectBounded(body: ByteSource): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const part of body) parts.push(part);
  return Buffer.concat(parts);
}

/** True when `mimeType` is one of `accepted` (which may hold wildcards such as `image/*`); empty accepts all. */
export function mimeTypeAccepted(mimeType: string, accepted: readonly string[]): boolean {
  if (accepted.length === 0) return true;
  const [type] = mimeType.split("/");
  return accepted.some((a) => {
    const want = a.trim().toLowerCase();
    return want === mimeType || want === "*/*" || want === `${type}/*`;
  });
}

/** Every way the object's metadata exceeds the server's ceilings, as sentences naming the variable to raise. */
export function ceilingViolations(meta: MediaMetadata, ceilings: MediaCeilings): string[] {
  const out: string[] = [];
  const over = (limit: number, value: number) => limit > 0 && value > limit;
  const side = Math.max(meta.width, meta.height);
  if (over(ceilings.maxDimensionPx, side)) {
    out.push(`${meta.width} × ${meta.height} px is over the ${ceilings.maxDimensionPx}-px limit per side (${ceilingVariables.maxDimensionPx})`);
  }
  const pixels = meta.width * meta.height;
  if (over(ceilings.maxPixels, pixels)) {
    // As a bigint: 2^31-1 squared is past a double's exact integers.
    out.push(`${BigInt(meta.width) * BigInt(meta.height)} pixels per frame are over the limit of ${ceilings.maxPixels} (${ceilingVariables.maxPixels})`);
  }
  if (over(ceilings.maxDurationSeconds, meta.durationSeconds)) {
    out.push(`duration ${meta.durationSeconds.toFixed(3)} s is over the ${ceilings.maxDurationSeconds}-s limit (${ceilingVariables.maxDurationSeconds})`);
  }
  return out;
}

/** Every way the object breaks the pin's limits, as sentences; empty when it fits. */
export function constraintViolations(meta: MediaMetadata, mimeType: string, sizeBytes: number, c: MediaConstraints | undefined): string[] {
  if (!c) return [];
  const out: string[] = [];
  if (!mimeTypeAccepted(mimeType, c.acceptedMimeTypes)) {
    out.push(`type ${mimeType} is not among the accepted ${c.acceptedMimeTypes.join(", ")}`);
  }
  const maxSize = Number(c.maxSizeBytes);
  if (maxSize > 0 && sizeBytes > maxSize) out.push(`size ${sizeBytes} bytes is over the pin's ${maxSize}`);
  if (c.maxWidth > 0 && meta.width > c.maxWidth) out.push(`width ${meta.width} px is over the pin's ${c.maxWidth}`);
  if (c.maxHeight > 0 && meta.height > c.maxHeight) out.push(`height ${meta.height} px is over the pin's ${c.maxHeight}`);
  if (c.maxDurationSeconds > 0 && meta.durationSeconds > c.maxDurationSeconds) {
    out.push(`duration ${meta.durationSeconds.toFixed(3)} s is over the pin's ${c.maxDurationSeconds} s`);
  }
  if (c.maxSampleRate > 0 && meta.sampleRate > c.maxSampleRate) {
    out.push(`sample rate ${meta.sampleRate} Hz is over the pin's ${c.maxSampleRate} Hz`);
  }
  if (c.maxChannels > 0 && meta.channels > c.maxChannels) out.push(`${meta.channels} channels are over the pin's ${c.maxChannels}`);
  return out;
}
