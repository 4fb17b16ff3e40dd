import { spawn } from "node:child_process";
import { once } from "node:events";

/**
 * Runs a command-line tool and yields its stdout as the tool writes it, so an agent can stream
 * media while it is produced. The process is killed if the consumer stops early; a non-zero exit
 * fails the iteration with the tail of the tool's stderr.
 */
export async function* toolOutput(command: string, args: readonly string[]): AsyncGenerator<Uint8Array> {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr = (stderr + chunk).slice(-2000)));
  const exited = once(child, "close") as Promise<[number | null, NodeJS.Signals | null]>;
  try {
    for await (const chunk of child.stdout) yield chunk as Buffer;
    const [code] = await exited;
    if (code !== 0) throw new Error(`${command} exited with code ${code}: ${stderr.trim()}`);
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
  }
}
