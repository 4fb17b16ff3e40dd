import type { MessageShape } from "@bufbuild/protobuf";
import { LogLevelSchema } from "../../../gen/mentatlab/v1/common_pb.js";
import { NodeStateSchema, RunEventSchema, type Run, RunSchema, RunState, RunStateSchema, type RunEvent } from "../../../gen/mentatlab/v1/orchestrator_pb.js";
import { describeRun } from "./run-format.js";
import { announcedRetry, type CommandContext } from "./context.js";
import { ExitCode } from "./exit-codes.js";
import { describePinValue, enumLabel, formatTime } from "./format.js";
import { followSequenced } from "../../shared/resume.js";
import { finalRunStates, watchRunCall } from "../../shared/watched-calls.js";

/**
 * Follows a run's events live until its final state, printing each one. After a dropped connection
 * it resumes after the last sequence number it printed, so no event is shown twice or lost.
 */
export async function watchRun(ctx: CommandContext, runId: string, afterSeq = 0n): Promise<RunState> {
  if (afterSeq > 0n) {
    // Asked to start after the final event: there is nothing left to wait for.
    const { run } = await ctx.clients.orchestrator.getRun({ runId });
    if (run && finalRunStates.has(run.state) && run.lastEventSeq <= afterSeq) return run.state;
  }
  let last = afterSeq;
  let final: RunState = RunState.UNSPECIFIED;
  const events = followSequenced(
    watchRunCall(ctx.clients.orchestrator, runId),
    afterSeq,
    announcedRetry(ctx, () => `watch of run ${runId} after event ${last}`),
  );
  for await (const event of events) {
    last = event.seq;
    if (!(ctx.printer.format === "text" && isHeartbeat(event))) await ctx.printer.event(RunEventSchema, event, describeRunEvent);
    if (event.event.case === "runState" && finalRunStates.has(event.event.value.state)) final = event.event.value.state;
  }
  return final;
}

/**
 * What `run` and `runs retry` do with the run they started: print it, or with `watch` follow it to
 * its end, print it again as it ended, and exit by its final state.
 */
export async function printOrWatch(ctx: CommandContext, started: Run, watch: boolean, verb: string): Promise<ExitCode | undefined> {
  if (!watch) {
    await ctx.printer.result(RunSchema, started, describeRun);
    return undefined;
  }
  await ctx.printer.note(`run ${started.runId} ${verb}; watching`);
  const state = await watchRun(ctx, started.runId);
  const { run: final } = await ctx.clients.orchestrator.getRun({ runId: started.runId });
  await ctx.printer.result(RunSchema, final ?? started, describeRun);
  return exitCodeForRun(state);
}

// Heartbeats say only "still alive": useful to machines reading JSON, noise on a terminal.
function isHeartbeat(event: RunEvent): boolean {
  return event.event.case === "agent" && event.event.value.event.case === "heartbeat";
}

export function exitCodeForRun(state: RunState): ExitCode {
  if (state === RunState.SUCCEEDED) return ExitCode.ok;
  if (state === RunState.CANCELLED) return ExitCode.cancelled;
  return ExitCode.failed;
}

/** One line per event, e.g. `#4 12:00:01.250 thumb  progress 50% resizing`. */
export function describeRunEvent(event: MessageShape<typeof RunEventSchema>): string {
  const time = formatTime(event.time).slice(11, 23);
  const who = event.nodeId === "" ? "run" : event.itemIndex === undefined ? event.nodeId : `${event.nodeId}[${event.itemIndex}]`;
  return `#${event.seq} ${time} ${who}  ${describeWhat(event)}`;
}

function describeWhat(event: RunEvent): string {
  const e = event.event;
  switch (e.case) {
    case "runState":
      return `${enumLabel(RunStateSchema, e.value.state)}${e.value.reason ? `: ${e.value.reason}` : ""}`;
    case "nodeState":
      // A reused node ran no attempt: its reason says where its outputs came from.
      return `${enumLabel(NodeStateSchema, e.value.state)}${e.value.reused ? "" : ` (attempt ${e.value.attempt})`}${e.value.reason ? `: ${e.value.reason}` : ""}`;
    case "mapItem": {
      const m = e.value;
      const attempt = m.reused || m.attempt === 0 ? "" : ` (attempt ${m.attempt})`;
      return (
        `item ${m.index} ${enumLabel(NodeStateSchema, m.state)}${attempt}${m.reason ? `: ${m.reason}` : ""}` +
        ` · map ${m.succeeded + m.failed}/${m.total}${m.failed > 0 ? `, ${m.failed} failed` : ""}`
      );
    }
    case "agent": {
      const a = e.value.event;
      switch (a.case) {
        case "log":
          return `log ${enumLabel(LogLevelSchema, a.value.level)}: ${a.value.message}`;
        case "progress":
          return `progress ${a.value.percent.toFixed(0)}%${a.value.message ? ` ${a.value.message}` : ""}`;
        case "heartbeat":
          return "heartbeat";
        case "checkpoint":
          return `checkpoint ${a.value.name}`;
        case "metric":
          return `metric ${a.value.name}=${a.value.value}`;
        case "output":
          return `output ${a.value.pin} = ${describePinValue(a.value.value)}`;
        default:
          return "agent event";
      }
    }
    default:
      return "event";
  }
}
