import type { CtlConfig } from "./config.js";
import type { Clients } from "./connection.js";
import type { CliIo } from "./io.js";
import type { Printer } from "./output.js";
import { describeError } from "./exit-codes.js";
import type { ResumePolicy } from "../../shared/resume.js";

/** What every command action gets: the resolved configuration, clients and output. */
export interface CommandContext {
  readonly io: CliIo;
  readonly config: CtlConfig;
  readonly clients: Clients;
  readonly printer: Printer;
  readonly retry: ResumePolicy;
  /** The command line as the user typed it after `mentatctl`, to print commands that continue it. */
  readonly args: readonly string[];
}

/**
 * The command to run to pick up where this one stopped: the user's own command line plus each of
 * `options` it lacks (an option is `[flag, ...values]`; `aliases` name other spellings of a flag).
 */
export function continueCommand(ctx: CommandContext, options: readonly (readonly string[])[], aliases: Readonly<Record<string, string>> = {}): string {
  const given = new Set(ctx.args.map((arg) => aliases[arg] ?? arg));
  const missing = options.filter(([flag]) => flag !== undefined && !given.has(flag));
  return ["mentatctl", ...ctx.args, ...missing.flat()].map(shellQuoted).join(" ");
}

function shellQuoted(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/** The context's retry policy, telling the user about each retry so a pause is never silent. */
export function announcedRetry(ctx: CommandContext, what: () => string): ResumePolicy {
  return {
    ...ctx.retry,
    onRetry: (err, delayMs) =>
      void ctx.printer.note(`${what()} interrupted (${describeError(err).replace(/^error: /, "")}); retrying in ${(delayMs / 1000).toFixed(1)} s`),
  };
}
