import type { JsonValue } from "@bufbuild/protobuf";
import { isRecord } from "./json-record.js";
import type { PlainInput } from "./plain-contract.js";

/**
 * The warm worker protocol (docs/warm-agents.md): the plain contract in a loop over one long-lived
 * process. The executor starts the worker with MENTATLAB_WARM_WORKER=1; the worker prints
 * `{"warm": "ready"}` once it can take an attempt. Each attempt is one stdin line, the plain contract's
 * `{"spec", "context"}` plus the attempt's `run_token`; the worker answers with the contract's stdout
 * lines (events, then `{"result": …}` on success) and ends the attempt with
 * `{"warm": "attempt_end", "exit_code": N}`, N meaning what a plain agent's exit code means. stdin
 * closing tells the worker to stop.
 */
export const warmWorkerEnvName = "MENTATLAB_WARM_WORKER";

export const warmReadyLine = JSON.stringify({ warm: "ready" });

export function attemptEndLine(exitCode: number): string {
  return JSON.stringify({ warm: "attempt_end", exit_code: exitCode });
}

/** A line of the worker's own, or undefined for a plain-contract line. */
export type WarmLine = { readonly kind: "ready" } | { readonly kind: "attempt_end"; readonly exitCode: number };

export function parseWarmLine(line: string): WarmLine | undefined {
  if (!line.startsWith('{"warm"')) return undefined;
  let parsed: JsonValue;
  try {
    parsed = JSON.parse(line) as JsonValue;
  } catch {
    return undefined;
  }
  if (!isRecord(parsed)) return undefined;
  if (parsed["warm"] === "ready") return { kind: "ready" };
  if (parsed["warm"] === "attempt_end") {
    const code = parsed["exit_code"];
    return { kind: "attempt_end", exitCode: typeof code === "number" && Number.isInteger(code) ? code : 1 };
  }
  return undefined;
}

/** The stdin line handing a worker one attempt. */
export function attemptLine(input: PlainInput, runToken: string): string {
  return JSON.stringify({ ...input, run_token: runToken });
}

/** An attempt line as the worker reads it: the node it is for, and the run token to act as it. */
export interface WarmAttempt {
  readonly runId: string;
  readonly nodeId: string;
  readonly attempt: number;
  readonly runToken: string;
}

/** Reads what `attemptLine` wrote; throws a message saying what is missing. */
export function parseAttemptLine(line: string): WarmAttempt {
  const parsed = JSON.parse(line) as JsonValue;
  const context = isRecord(parsed) && isRecord(parsed["context"]) ? parsed["context"] : {};
  const runToken = isRecord(parsed) ? parsed["run_token"] : undefined;
  const { run_id: runId, node_id: nodeId, attempt } = context;
  if (typeof runId !== "string" || typeof nodeId !== "string" || typeof attempt !== "number" || typeof runToken !== "string") {
    throw new Error("an attempt line needs context.run_id, context.node_id, context.attempt and run_token");
  }
  return { runId, nodeId, attempt, runToken };
}
