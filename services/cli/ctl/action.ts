import type { Command } from "commander";
import type { CommandContext } from "./context.js";
import type { ExitCode } from "./exit-codes.js";

/** What a command does once its arguments are parsed; returning nothing means success. */
export type Action = (ctx: CommandContext) => Promise<ExitCode | void>;

/** Runs an action with a context built from the command's global options, then closes the connection. */
export type ActionRunner = (command: Command, action: Action) => Promise<void>;

/** Repeatable option collector: `--input a=1 --input b=2`. */
export function collect(value: string, previous: readonly string[] = []): string[] {
  return [...previous, value];
}
