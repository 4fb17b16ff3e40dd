import type { CtlConfig } from "./config.js";
import type { Clients } from "./connection.js";
import type { CliIo } from "./io.js";
import type { Printer } from "./output.js";
import { describeError } from "./exit-codes.js";
import type { RetryOptions } from "./retry.js";

/** What every command action gets: the resolved configuration, clients and output. */
export interface CommandContext {
  readonly io: CliIo;
  readonly config: CtlConfig;
  readonly clients: Clients;
  readonly printer: Printer;
  readonly retry: RetryOptions;
}

/** The context's retry policy, telling the user about each retry so a pause is never silent. */
export function announcedRetry(ctx: CommandContext, what: () => string): RetryOptions {
  return {
    ...ctx.retry,
    onRetry: (err) => void ctx.printer.note(`${what()} interrupted (${describeError(err).replace(/^error: /, "")}); resuming`),
  };
}
