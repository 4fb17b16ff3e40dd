import { toolOutput } from "../tool-output.js";

export interface TranscodeOptions {
  /** Output width in pixels (height follows the aspect ratio). */
  readonly width: number;
  /** Longest clip to produce, in seconds. */
  readonly maxSeconds: number;
}

/**
 * Transcodes `input` to a fragmented MP4 (H.264) on ffmpeg's stdout, so it can be streamed and played
 * while it is produced. The process is killed if the consumer stops early.
 */
export async function* transcodeClip(input: string, options: TranscodeOptions): AsyncGenerator<Uint8Array> {
  const args = [
    "-hide_banner",
    "-loglevel",
    "error",
    "-nostdin",
    "-i",
    input,
    "-t",
    String(options.maxSeconds),
    "-vf",
    `scale=${options.width}:-2`,
    "-c:v",
    "libx264",
    "-preset",
    "veryfast",
    "-pix_fmt",
    "yuv420p",
    "-an",
    "-movflags",
    "frag_keyframe+empty_moov+default_base_moof",
    "-f",
    "mp4",
    "pipe:1",
  ];
  yield* toolOutput("ffmpeg", args);
}

/** Writes the first frame of `input` as a PNG at `output`. */
export async function extractPoster(input: string, output: string, width: number): Promise<void> {
  for await (const _ of toolOutput("ffmpeg", [
    "-hide_banner",
    "-loglevel",
    "error",
    "-nostdin",
    "-y",
    "-i",
    input,
    "-frames:v",
    "1",
    "-vf",
    `scale=${width}:-2`,
    output,
  ])) {
    // ffmpeg writes the file itself; nothing arrives on stdout.
  }
}
