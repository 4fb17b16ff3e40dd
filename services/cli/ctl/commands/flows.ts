import { randomUUID } from "node:crypto";
import type { Command } from "commander";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { CacheMode, RunSchema, type SubmitFlowRequestSchema, ValidateFlowResponseSchema } from "../../../../gen/mentatlab/v1/orchestrator_pb.js";
import { collect, type ActionRunner } from "../action.js";
import type { CommandContext } from "../context.js";
import { CliError, ExitCode } from "../exit-codes.js";
import { readFlowFile } from "../flow-file.js";
import { describeViolation } from "../format.js";
import { parseInputSpec, resolveInputs } from "../pin-inputs.js";
import { withResume } from "../../../shared/resume.js";
import { printOrWatch } from "../run-watch.js";

/** `--cache` values (docs/reuse.md). */
const cacheModes: Readonly<Record<string, CacheMode>> = {
  "read-write": CacheMode.READ_WRITE,
  read: CacheMode.READ,
  write: CacheMode.WRITE,
  off: CacheMode.OFF,
};

const inputHelp = "bind an input: node.pin=@file (uploaded, or read for text/json pins), node.pin=ref:<id>, or node.pin=text (repeatable)";

export function registerFlowCommands(program: Command, run: ActionRunner): void {
  program
    .command("flows")
    .description("work with flow files")
    .command("validate")
    .description("check a flow (and its inputs) against the registered agents; exit code 1 when invalid")
    .argument("<flow>", "flow file (YAML or JSON)")
    .option("--input <binding>", inputHelp, collect, [])
    .action((file: string, opts: { input: string[] }, command: Command) =>
      run(command, async (ctx) => {
        const flow = await readFlowFile(ctx.io.cwd, file);
        // Validating must not leave lasting objects behind: files go to the temp class.
        const inputs = await resolveInputs(ctx, opts.input.map(parseInputSpec), flow.nodes, true);
        const result = await ctx.clients.orchestrator.validateFlow({ source: { source: { case: "text", value: flow.text } }, inputs });
        await ctx.printer.result(ValidateFlowResponseSchema, result, (r) =>
          r.valid
            ? `${file}: valid; nodes start in order ${r.topologicalOrder.join(" → ")}`
            : `${file}: ${r.violations.length} violation(s)\n${r.violations.map(describeViolation).join("\n")}`,
        );
        return result.valid ? ExitCode.ok : ExitCode.failed;
      }),
    );

  program
    .command("run")
    .description("submit a flow with its inputs; --watch follows it live and exits by its final state")
    .argument("<flow>", "flow file (YAML or JSON)")
    .option("--input <binding>", inputHelp, collect, [])
    .option("--label <key=value>", "label the run (repeatable)", collect, [])
    .option("--cache <mode>", `how nodes of cacheable agents use the node cache: ${Object.keys(cacheModes).join(", ")}`, "read-write")
    .option("--watch", "follow the run until it ends")
    .action((file: string, opts: { input: string[]; label: string[]; cache: string; watch?: boolean }, command: Command) =>
      run(command, async (ctx) => {
        const cache = cacheModes[opts.cache];
        if (cache === undefined) throw new CliError(`unknown --cache mode "${opts.cache}"; use ${Object.keys(cacheModes).join(", ")}`, ExitCode.usage);
        const flow = await readFlowFile(ctx.io.cwd, file);
        const inputs = await resolveInputs(ctx, opts.input.map(parseInputSpec), flow.nodes, false);
        const submitted = await submit(ctx, { source: { source: { case: "text", value: flow.text } }, inputs, labels: parseLabels(opts.label), cache });
        return printOrWatch(ctx, submitted, opts.watch ?? false, "submitted");
      }),
    );
}

async function submit(ctx: CommandContext, request: Omit<MessageInitShape<typeof SubmitFlowRequestSchema>, "requestId" | "$typeName">) {
  // The same request id on every attempt: a retried submit returns the run the first one started.
  const requestId = randomUUID();
  const { run } = await withResume(ctx.retry, () => ctx.clients.orchestrator.submitFlow({ ...request, requestId }));
  return run ?? create(RunSchema);
}

function parseLabels(labels: readonly string[]): Record<string, string> {
  return Object.fromEntries(
    labels.map((label) => {
      const eq = label.indexOf("=");
      return eq > 0 ? [label.slice(0, eq), label.slice(eq + 1)] : [label, ""];
    }),
  );
}
