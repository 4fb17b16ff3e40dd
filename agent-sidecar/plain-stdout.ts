import type { JsonValue } from "@bufbuild/protobuf";
import type { AgentEvent } from "../gen/mentatlab/v1/common_pb.js";
import { parsePlainLine } from "../agent-contract/plain-contract.js";

/**
 * Callbacks for what a plain agent prints on stdout. A returned promise resolves once the orchestrator
 * acknowledged what the line caused, which is how far a bridged sidecar may record it reported.
 */
export interface PlainStdoutHandlers {
  /** Called for every event line, in order. */
  readonly onEvent: (event: AgentEvent) => void | Promise<void>;
  /** Called for an `{"type": "output", "data": {"pin", "value"}}` line, after its event. */
  readonly onOutput?: (pin: string, raw: JsonValue) => void | Promise<void>;
}

/** What a plain agent's stdout said by the end: its result and its last error message. */
export interface PlainStdoutSummary {
  /** The value of the last `{"result": …}` line, if any. */
  readonly result: JsonValue | undefined;
  readonly hasResult: boolean;
  /** Message of the last `{"type": "error"}` line, if any. */
  readonly errorMessage: string;
}

/**
 * Reads a plain agent's stdout line by line with the orchestrator's own contract parser, whether the
 * lines come from a pipe (wrapped agent) or a file on the shared volume (bridged agent), so both modes
 * understand agents identically.
 */
export class PlainStdoutReader {
  private result: JsonValue | undefined;
  private hasResult: boolean;
  private errorMessage: string;

  /** `resumed` is the summary of the lines a restarted bridged sidecar does not read again. */
  constructor(
    private readonly handlers: PlainStdoutHandlers,
    resumed: PlainStdoutSummary = { result: undefined, hasResult: false, errorMessage: "" },
  ) {
    this.result = resumed.result;
    this.hasResult = resumed.hasResult;
    this.errorMessage = resumed.errorMessage;
  }

  /** Handles one line; resolves once everything it caused is acknowledged (see PlainStdoutHandlers). */
  async line(line: string): Promise<void> {
    const parsed = parsePlainLine(line);
    if (!parsed) return;
    if (parsed.kind === "result") {
      this.result = parsed.result;
      this.hasResult = true;
      return;
    }
    if (parsed.kind === "error") this.errorMessage = parsed.message;
    const acknowledged = [this.handlers.onEvent(parsed.event)];
    if (parsed.kind === "output") acknowledged.push(this.handlers.onOutput?.(parsed.pin, parsed.raw));
    await Promise.all(acknowledged);
  }

  summary(): PlainStdoutSummary {
    return { result: this.result, hasResult: this.hasResult, errorMessage: this.errorMessage };
  }
}

/** The last `limit` lines, oldest first: what a crash report quotes from stderr. */
export class LineTail {
  private readonly kept: string[] = [];

  constructor(private readonly limit: number) {}

  push(line: string): void {
    this.kept.push(line);
    if (this.kept.length > this.limit) this.kept.shift();
  }

  lines(): readonly string[] {
    return [...this.kept];
  }
}
