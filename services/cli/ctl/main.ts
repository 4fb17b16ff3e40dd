import { Command, CommanderError, Option } from "commander";
import { registerAgentCommands } from "./commands/agents.js";
import { registerFlowCommands } from "./commands/flows.js";
import { registerRunCommands } from "./commands/runs.js";
import { registerStorageCommands } from "./commands/storage.js";
import { registerStreamCommands } from "./commands/streams.js";
import type { ActionRunner } from "./action.js";
import { defaultResumePolicy } from "../../shared/resume.js";
import { ctlConfig, defaultRetrySeconds, defaultUrl, type CtlFlags } from "./config.js";
import { openConnection } from "./connection.js";
import { CliError, describeError, ExitCode } from "./exit-codes.js";
import { processIo, writeOut, type CliIo } from "./io.js";
import { Printer } from "./output.js";

const exitCodeHelp = `
Environment:
  MENTATLAB_URL          gateway URL (default ${defaultUrl})
  MENTATLAB_API_KEY      API key (default: .mentatlab/dev-admin.key, written by npm start)
  MENTATLAB_DATA_DIR     where the dev key is looked for (default .mentatlab)
  MENTATLAB_HTTP_VERSION 2 or 1.1 (default 2)
  MENTATLAB_OUTPUT       text or json (default text)
  MENTATLAB_RETRY_SECONDS how long transfers and watches retry a lost connection (default ${defaultRetrySeconds})

Exit codes: 0 ok, 1 request failed / invalid / run failed, 2 bad command line, 3 run cancelled.`;

/**
 * Runs mentatctl with `argv` in process.argv form (`[node, script, ...args]`) and returns the exit
 * code instead of exiting, so tests can run it in-process.
 */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  let exitCode: number = ExitCode.ok;
  const run: ActionRunner = async (command, action) => {
    const config = usageChecked(() => ctlConfig(command.optsWithGlobals<CtlFlags>(), io.env, io.cwd));
    const connection = openConnection(config);
    try {
      const printer = new Printer(io, config.output);
      const retry = { ...defaultResumePolicy, giveUpAfterMs: config.retrySeconds * 1000 };
      exitCode = (await action({ io, config, clients: connection.clients, printer, retry, args: argv.slice(2) })) ?? ExitCode.ok;
    } finally {
      connection.close();
    }
  };
  const program = buildProgram(io, run);
  try {
    await program.parseAsync([...argv]);
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    await writeOut(io.stderr, `${describeError(err)}\n`);
    return err instanceof CliError ? err.exitCode : ExitCode.failed;
  }
}

function buildProgram(io: CliIo, run: ActionRunner): Command {
  const program = new Command("mentatctl")
    .description("Command-line client for MentatLab Mesh: media, agents, flows, runs and streams.")
    .option("--url <url>", `gateway URL (env MENTATLAB_URL, default ${defaultUrl})`)
    .option("--key <key>", "API key (env MENTATLAB_API_KEY, else .mentatlab/dev-admin.key)")
    .option("--http1", "use HTTP/1.1 instead of HTTP/2 (env MENTATLAB_HTTP_VERSION=1.1)")
    .addOption(new Option("--output <format>", "how to print results (env MENTATLAB_OUTPUT)").choices(["text", "json"]))
    .addHelpText("after", exitCodeHelp)
    .showHelpAfterError()
    // Set before the subcommands exist: they inherit both, so no path calls process.exit or bypasses io.
    .exitOverride()
    .configureOutput({
      writeOut: (text) => void io.stdout.write(text),
      writeErr: (text) => void io.stderr.write(text),
    });
  registerStorageCommands(program, run);
  registerAgentCommands(program, run);
  registerFlowCommands(program, run);
  registerRunCommands(program, run);
  registerStreamCommands(program, run);
  return program;
}

// A configuration mistake (flag or environment) is the command line's fault: exit code 2, not 1.
function usageChecked<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    throw new CliError(err instanceof Error ? err.message : String(err), ExitCode.usage);
  }
}
