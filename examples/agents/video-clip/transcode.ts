import { spawn } from "node:child_process";
import { once } from "node:events";

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
    "-hide_banner", "-loglevel", "error", "-nostdin",
    "-i", input,
    "-t", String(options.maxSeconds),
    "-vf", `scale=${options.width}:-2`,
    "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
    "-an",
    "-movflags", "frag_keyframe+empty_moov+default_base_moof",
    "-f", "mp4", "pipe:1",
  ];
  yield* ffmpegOutput(args);
}

/** Writes the first frame of `input` as a PNG at `output`. */
export async function extractPoster(input: string, output: string, width: number): Promise<void> {
  for await (const _ of ffmpegOutput(["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", input, "-frames:v", "1", "-vf", `scale=${width}:-2`, output])) {
    // ffmpeg writes the file itself; nothing arrives on stdout.
  }
}

async function* ffmpegOutput(args: string[]): AsyncGenerator<Uint8Array> {
  const child = spawn("ffmpeg", args, { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr = (stderr + chunk).slice(-2000)));
  const exited = once(child, "close") as Promise<[number | null, NodeJS.Signals | null]>;
  try {
    for await (const chunk of child.stdout) yield chunk as Buffer;
    const [code] = await exited;
    if (code !== 0) throw new Error(`ffmpeg exited with code ${code}: ${stderr.trim()}`);
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
  }
}
