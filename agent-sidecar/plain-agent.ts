import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import type { JsonValue } from "@bufbuild/protobuf";
import type { AgentEvent } from "../gen/mentatlab/v1/common_pb.js";
import { parsePlainLine } from "../services/orchestrator/plain-contract.js";

export interface PlainAgentOptions {
  /** Program and arguments. */
  readonly command: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  /** Written to the agent's stdin as one JSON document, then stdin is closed. */
  readonly stdin: JsonValue;
  /** Called for every event line, in order. */
  readonly onEvent: (event: AgentEvent) => void;
  /** Called for an `{"type": "output", "data": {"pin", "value"}}` line, after its event. */
  readonly onOutput?: (pin: string, raw: JsonValue) => void;
  /** Called for every stderr line, in order. */
  readonly onStderr?: (line: string) => void;
  /** Stops the agent: SIGTERM, then SIGKILL after `killGraceMs`. */
  readonly signal?: AbortSignal;
  readonly killGraceMs?: number;
  /** Stderr lines kept for the failure report. */
  readonly stderrTailLines: number;
}

export interface PlainAgentExit {
  /** Exit code; null when killed by a signal. */
  readonly exitCode: number | null;
  /** Signal that killed the agent, if any. */
  readonly exitSignal: NodeJS.Signals | null;
  /** The value of the last `{"result": …}` line, if any. */
  readonly result: JsonValue | undefined;
  readonly hasResult: boolean;
  /** Message of the last `{"type": "error"}` line, if any. */
  readonly errorMessage: string;
  /** The last stderr lines, oldest first. */
  readonly stderrTail: readonly string[];
}

/** Exit code by which a plain agent marks a transient failure worth retrying. */
export const transientExitCode = 3;

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
  const stderrTail: string[] = [];
  let result: JsonValue | undefined;
  let hasResult = false;
  let errorMessage = "";

  // An agent that never reads its stdin closes the pipe early; that is its business, not a failure.
  child.stdin.on("error", () => undefined);
  child.stdin.end(`${JSON.stringify(options.stdin)}\n`);

  const stdoutDone = new Promise<void>((resolve) => {
    const lines = createInterface({ input: child.stdout, crlfDelay: Infinity });
    lines.on("line", (line) => {
      const parsed = parsePlainLine(line);
      if (!parsed) return;
      if (parsed.kind === "result") {
        result = parsed.result;
        hasResult = true;
        return;
      }
      options.onEvent(parsed.event);
      if (parsed.kind === "output") options.onOutput?.(parsed.pin, parsed.raw);
      if (parsed.kind === "error") errorMessage = parsed.message;
    });
    lines.on("close", resolve);
  });
  const stderrDone = new Promise<void>((resolve) => {
    const lines = createInterface({ input: child.stderr, crlfDelay: Infinity });
    lines.on("line", (line) => {
      stderrTail.push(line);
      if (stderrTail.length > options.stderrTailLines) stderrTail.shift();
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
        resolve({ exitCode, exitSignal, result, hasResult, errorMessage, stderrTail });
      });
    });
  });
}
