import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import type { JsonValue } from "@bufbuild/protobuf";
import { LineTail, PlainStdoutReader, type PlainStdoutHandlers, type PlainStdoutSummary } from "./plain-stdout.js";
import type { ResultProgress } from "./result-outputs.js";

export interface PlainAgentOptions extends PlainStdoutHandlers {
  /** Program and arguments. */
  readonly command: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  /** Written to the agent's stdin as one JSON document, then stdin is closed. */
  readonly stdin: JsonValue;
  /** Called for every stderr line, in order. */
  readonly onStderr?: (line: string) => void;
  /** Stops the agent: SIGTERM, then SIGKILL after `killGraceMs`. */
  readonly signal?: AbortSignal;
  readonly killGraceMs?: number;
  /** Stderr lines kept for the failure report. */
  readonly stderrTailLines: number;
}

export interface PlainAgentExit extends PlainStdoutSummary {
  /** Exit code; null when killed by a signal. */
  readonly exitCode: number | null;
  /** Signal that killed the agent, if any. */
  readonly exitSignal: NodeJS.Signals | null;
  /** The last stderr lines, oldest first. */
  readonly stderrTail: readonly string[];
  /** A bridged agent's record of the result pins published, which survives a sidecar restart. */
  readonly resultProgress?: ResultProgress;
}

/**
 * Runs an agent of the original plain contract: spec and context as JSON on stdin, NDJSON events on
 * stdout ending with `{"result": …}` (lines are read by the orchestrator's own contract parser, so the
 * sidecar and the local executor understand agents identically). Resolves once the process has exited
 * and its output is read.
 */
export function runPlainAgent(options: PlainAgentOptions): Promise<PlainAgentExit> {
  const [program, ...args] = options.command;
  if (!program) return Promise.reject(new Error("no agent command given"));
  const child = spawn(program, args, {
    cwd: options.cwd,
    env: options.env,
    stdio: ["pipe", "pipe", "pipe"],
  });
  const stderrTail = new LineTail(options.stderrTailLines);
  const stdout = new PlainStdoutReader(options);

  // An agent that never reads its stdin closes the pipe early; that is its business, not a failure.
  child.stdin.on("error", () => undefined);
  child.stdin.end(`${JSON.stringify(options.stdin)}\n`);

  const stdoutDone = new Promise<void>((resolve) => {
    const lines = createInterface({ input: child.stdout, crlfDelay: Infinity });
    // A wrapped agent's progress is not recorded anywhere; delivery errors surface at the final flush.
    lines.on("line", (line) => void stdout.line(line).catch(() => undefined));
    lines.on("close", resolve);
  });
  const stderrDone = new Promise<void>((resolve) => {
    const lines = createInterface({ input: child.stderr, crlfDelay: Infinity });
    lines.on("line", (line) => {
      stderrTail.push(line);
      options.onStderr?.(line);
    });
    lines.on("close", resolve);
  });

  let killTimer: NodeJS.Timeout | undefined;
  const stop = (): void => {
    child.kill("SIGTERM");
    killTimer = setTimeout(() => child.kill("SIGKILL"), options.killGraceMs ?? 5_000);
    killTimer.unref();
  };
  if (options.signal?.aborted) stop();
  else options.signal?.addEventListener("abort", stop, { once: true });

  return new Promise<PlainAgentExit>((resolve, reject) => {
    child.once("error", (error) => {
      options.signal?.removeEventListener("abort", stop);
      reject(new Error(`cannot start agent ${program}: ${error.message}`));
    });
    child.once("exit", (exitCode, exitSignal) => {
      options.signal?.removeEventListener("abort", stop);
      if (killTimer) clearTimeout(killTimer);
      // Grandchildren may hold the pipes open; the agent's own exit is what counts.
      let settle: NodeJS.Timeout | undefined;
      const orphanedPipes = new Promise<void>((done) => {
        settle = setTimeout(() => {
          child.stdout.destroy();
          child.stderr.destroy();
          done();
        }, 2_000);
      });
      void Promise.race([Promise.all([stdoutDone, stderrDone]), orphanedPipes]).then(() => {
        clearTimeout(settle);
        resolve({ exitCode, exitSignal, ...stdout.summary(), stderrTail: stderrTail.lines() });
      });
    });
  });
}
