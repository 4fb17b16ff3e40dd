import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { requireTool } from "./require.js";

const run = promisify(execFile);

/**
 * Makes a media file with ffmpeg from its built-in test sources (`testsrc=duration=2:size=320x240`,
 * `sine=frequency=440`, …), one input each, followed by `output`: the encoding options and the path.
 */
export async function ffmpegFromTestSources(sources: readonly string[], output: readonly string[]): Promise<void> {
  const ffmpeg = requireTool("ffmpeg", "install it with `apt-get install -y ffmpeg`");
  const inputs = sources.flatMap((source) => ["-f", "lavfi", "-i", source]);
  await run(ffmpeg, ["-hide_banner", "-loglevel", "error", "-y", ...inputs, ...output]);
}
