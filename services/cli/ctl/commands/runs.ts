import { randomUUID } from "node:crypto";
import type { Command } from "commander";
import { create } from "@bufbuild/protobuf";
import { ListRunsResponseSchema, RunSchema, RunState } from "../../../../gen/mentatlab/v1/orchestrator_pb.js";
import type { ActionRunner } from "../action.js";
import { CliError, ExitCode } from "../exit-codes.js";
import { describeRun, describeRunList } from "../run-format.js";
import { withResume } from "../../../shared/resume.js";
import { exitCodeForRun, printOrWatch, watchRun } from "../run-watch.js";

const stateNames: Readonly<Record<string, RunState>> = {
  pending: RunState.PENDING,
  running: RunState.RUNNING,
  succeeded: RunState.SUCCEEDED,
  failed: RunState.FAILED,
  cancelled: RunState.CANCELLED,
};

export function registerRunCommands(program: Command, run: ActionRunner): void {
  const runs = program.command("runs").description("inspect, follow, cancel and retry runs");

  runs
    .command("list")
    .description("list the workspace's runs, newest first")
    .option("--state <state...>", `only runs in these states (${Object.keys(stateNames).join(", ")})`)
    .option("--limit <n>", "most runs to show", "50")
    .action((opts: { state?: string[]; limit: string }, command: Command) =>
      run(command, async (ctx) => {
        const states = (opts.state ?? []).map((name) => {
          const state = stateNames[name];
          if (state === undefined) throw new CliError(`unknown state "${name}"; use ${Object.keys(stateNames).join(", ")}`, ExitCode.usage);
          return state;
        });
        const limit = Number(opts.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new CliError("--limit must be an integer from 1 to 500", ExitCode.usage);
        const response = await ctx.clients.orchestrator.listRuns({ states, pageSize: limit });
        await ctx.printer.result(ListRunsResponseSchema, response, (r) => describeRunList(r.runs));
      }),
    );

  runs
    .command("get")
    .description("show a run's state, nodes and outputs")
    .argument("<run-id>", "run id")
    .action((runId: string, _opts: unknown, command: Command) =>
      run(command, async (ctx) => {
        const { run: found } = await ctx.clients.orchestrator.getRun({ runId });
        await ctx.printer.result(RunSchema, found ?? create(RunSchema), describeRun);
      }),
    );

  runs
    .command("cancel")
    .description("cancel a run: running agents are stopped, pending nodes never start")
    .argument("<run-id>", "run id")
    .option("--reason <text>", "why, recorded on the run", "cancelled with mentatctl")
    .action((runId: string, opts: { reason: string }, command: Command) =>
      run(command, async (ctx) => {
        const { run: cancelled } = await ctx.clients.orchestrator.cancelRun({ runId, reason: opts.reason });
        await ctx.printer.result(RunSchema, cancelled ?? create(RunSchema), describeRun);
      }),
    );

  runs
    .command("retry")
    .description("start a new run of a failed or cancelled run that reuses what succeeded and reruns the rest")
    .argument("<run-id>", "the failed or cancelled run")
    .option("--from <node>", "also rerun this node and its downstream, even if it succeeded")
    .option("--watch", "follow the new run until it ends")
    .action((runId: string, opts: { from?: string; watch?: boolean }, command: Command) =>
      run(command, async (ctx) => {
        // The same request id on every attempt: a retried call returns the run the first one started.
        const requestId = randomUUID();
        const { run: started } = await withResume(ctx.retry, () => ctx.clients.orchestrator.retryRun({ runId, fromNode: opts.from ?? "", requestId }));
        return printOrWatch(ctx, started ?? create(RunSchema), opts.watch ?? false, `retries ${runId}`);
      }),
    );

  runs
    .command("watch")
    .description("follow a run's events until it ends; exit code by its final state")
    .argument("<run-id>", "run id")
    .option("--after <seq>", "start after this event sequence number", "0")
    .action((runId: string, opts: { after: string }, command: Command) =>
      run(command, async (ctx) => exitCodeForRun(await watchRun(ctx, runId, sequenceNumber(opts.after, "--after")))),
    );
}

export function sequenceNumber(text: string, flag: string): bigint {
  if (!/^\d+$/.test(text)) throw new CliError(`${flag} must be a sequence number (0 or more), got "${text}"`, ExitCode.usage);
  return BigInt(text);
}
