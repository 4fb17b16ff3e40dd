import type { Env } from "../../shared/env.js";

/** Where a CLI invocation reads its environment and writes its output; tests pass their own. */
export interface CliIo {
  /** Command results (and downloaded bytes when writing to stdout). */
  readonly stdout: NodeJS.WritableStream & { readonly isTTY?: boolean };
  /** Errors, progress bars and live run/stream commentary. */
  readonly stderr: NodeJS.WritableStream & { readonly isTTY?: boolean };
  readonly env: Env;
  /** Directory relative paths (files, `.mentatlab/dev-admin.key`) resolve against. */
  readonly cwd: string;
}

export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() };
}

/** Writes `text` and waits until the stream has taken it, so large outputs keep backpressure. */
export function writeOut(stream: NodeJS.WritableStream, text: string | Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.write(text, (err) => (err ? reject(err) : resolve()));
  });
}
