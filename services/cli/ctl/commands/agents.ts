import type { Command } from "commander";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { PinTypeSchema } from "../../../../gen/mentatlab/v1/common_pb.js";
import {
  AgentManifestSchema,
  CapabilitySchema,
  ListAgentsResponseSchema,
  ResourceProfileSchema,
  ValidateManifestResponseSchema,
  type AgentManifest,
  type Pin,
} from "../../../../gen/mentatlab/v1/registry_pb.js";
import type { ActionRunner } from "../action.js";
import type { CommandContext } from "../context.js";
import { ExitCode } from "../exit-codes.js";
import { columns, describeViolation, enumLabel, formatTime, table } from "../format.js";
import { readManifestFile } from "../manifest-file.js";

export function registerAgentCommands(program: Command, run: ActionRunner): void {
  const agents = program.command("agents").description("register, validate and inspect agent manifests");

  agents
    .command("register")
    .description("validate and store a manifest (YAML or JSON)")
    .argument("<manifest>", "manifest file")
    .action((file: string, _opts: unknown, command: Command) =>
      run(command, async (ctx) => {
        const text = await readManifestFile(ctx.io.cwd, file);
        try {
          const { agent } = await ctx.clients.registry.registerAgent({ source: { source: { case: "text", value: text } } });
          await ctx.printer.result(AgentManifestSchema, agent ?? create(AgentManifestSchema), describeManifest);
        } catch (err) {
          // The refusal names the first problem at best; show the user all of them at once.
          if (ConnectError.from(err).code === Code.InvalidArgument) await printViolations(ctx, text);
          throw err;
        }
      }),
    );

  agents
    .command("validate")
    .description("check a manifest without storing it; prints every violation, exit code 1 when invalid")
    .argument("<manifest>", "manifest file")
    .action((file: string, _opts: unknown, command: Command) =>
      run(command, async (ctx) => {
        const text = await readManifestFile(ctx.io.cwd, file);
        const result = await ctx.clients.registry.validateManifest({ source: { source: { case: "text", value: text } } });
        await ctx.printer.result(ValidateManifestResponseSchema, result, (r) =>
          r.valid
            ? `${file}: valid${r.manifest ? ` (${r.manifest.id}@${r.manifest.version})` : ""}`
            : `${file}: ${r.violations.length} violation(s)\n${r.violations.map(describeViolation).join("\n")}`,
        );
        return result.valid ? ExitCode.ok : ExitCode.failed;
      }),
    );

  agents
    .command("list")
    .description("list registered agents, newest version of each first")
    .option("--prefix <id-prefix>", "only ids starting with this")
    .option("--all-versions", "every version, not only the newest")
    .action((opts: { prefix?: string; allVersions?: boolean }, command: Command) =>
      run(command, async (ctx) => {
        const all = create(ListAgentsResponseSchema);
        let pageToken = "";
        do {
          const page = await ctx.clients.registry.listAgents({ idPrefix: opts.prefix ?? "", allVersions: opts.allVersions ?? false, pageSize: 500, pageToken });
          all.agents.push(...page.agents);
          pageToken = page.nextPageToken;
        } while (pageToken !== "");
        await ctx.printer.result(ListAgentsResponseSchema, all, (r) =>
          r.agents.length === 0
            ? "no agents registered"
            : columns(
                ["ID", "VERSION", "PROFILE", "INPUTS", "OUTPUTS", "DESCRIPTION"],
                r.agents.map((a) => [
                  a.id,
                  a.version,
                  enumLabel(ResourceProfileSchema, a.resourceProfile),
                  pinList(a.inputs),
                  pinList(a.outputs),
                  a.description,
                ]),
              ),
        );
      }),
    );

  agents
    .command("get")
    .description("show one manifest")
    .argument("<id>", "agent id")
    .option("--version <version>", "exact version (default: newest)")
    .action((id: string, opts: { version?: string }, command: Command) =>
      run(command, async (ctx) => {
        const { agent } = await ctx.clients.registry.getAgent({ id, version: opts.version ?? "" });
        await ctx.printer.result(AgentManifestSchema, agent ?? create(AgentManifestSchema), describeManifest);
      }),
    );
}

async function printViolations(ctx: CommandContext, text: string): Promise<void> {
  const result = await ctx.clients.registry.validateManifest({ source: { source: { case: "text", value: text } } }).catch(() => undefined);
  if (result && !result.valid) await ctx.printer.note(`violations:\n${result.violations.map(describeViolation).join("\n")}`);
}

function pinList(pins: readonly Pin[]): string {
  return pins.map((p) => `${p.name}:${enumLabel(PinTypeSchema, p.type)}`).join(",") || "-";
}

function describePin(pin: Pin): string {
  const media = pin.media?.acceptedMimeTypes.length ? ` [${pin.media.acceptedMimeTypes.join(", ")}]` : "";
  return `  ${pin.name} (${enumLabel(PinTypeSchema, pin.type)}${pin.required ? ", required" : ""})${media}${pin.description ? ` — ${pin.description}` : ""}`;
}

function describeManifest(m: AgentManifest): string {
  return [
    table([
      ["id", m.id],
      ["version", m.version],
      ["description", m.description],
      ["image", m.image],
      ["runtime", m.runtime],
      ["profile", enumLabel(ResourceProfileSchema, m.resourceProfile)],
      ["capabilities", m.capabilities.map((c) => enumLabel(CapabilitySchema, c)).join(", ")],
      ["long running", m.longRunning ? "yes" : undefined],
      ["command", m.command.join(" ")],
      ["registered", m.registeredAt ? formatTime(m.registeredAt) : undefined],
    ]),
    m.inputs.length > 0 ? `inputs:\n${m.inputs.map(describePin).join("\n")}` : "inputs: none",
    m.outputs.length > 0 ? `outputs:\n${m.outputs.map(describePin).join("\n")}` : "outputs: none",
  ].join("\n");
}
