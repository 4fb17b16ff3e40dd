import { spawn } from "node:child_process";
import { once } from "node:events";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";

/**
 * Runs a command-line tool and yields its stdout as the tool writes it, so an agent can stream
 * media while it is produced. `input`, when given, is written to the tool's stdin as it arrives (with
 * backpressure), so a tool can transform a live stream. The process is killed if the consumer stops
 * early; a non-zero exit fails the iteration with the tail of the tool's stderr, and a failing input
 * fails it with the input's error.
 */
export async function* toolOutput(command: string, args: readonly string[], input?: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
  let inputFailure: { readonly error: unknown } | undefined;
  let fed: Promise<unknown> = Promise.resolve();
  if (input) fed = pipeline(Readable.from(input), child.stdin).catch((error: unknown) => (inputFailure = { error }));
  // Without input the tool reads an empty stdin, as with stdin closed.
  else child.stdin.end();
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr = (stderr + chunk).slice(-2000)));
  const exited = once(child, "close") as Promise<[number | null, NodeJS.Signals | null]>;
  try {
    for await (const chunk of child.stdout) yield chunk as Buffer;
    const [code] = await exited;
    await fed;
    // The tool's own failure explains more than the broken pipe it leaves its input with.
    if (code !== 0) throw new Error(`${command} exited with code ${code}: ${stderr.trim()}`);
    if (inputFailure) throw inputFailure.error;
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
  }
}
