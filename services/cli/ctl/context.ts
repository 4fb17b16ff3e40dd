import type { CtlConfig } from "./config.js";
import type { Clients } from "./connection.js";
import type { CliIo } from "./io.js";
import type { Printer } from "./output.js";
import type { RetryOptions } from "./retry.js";

/** What every command action gets: the resolved configuration, clients and output. */
export interface CommandContext {
  readonly io: CliIo;
  readonly config: CtlConfig;
  readonly clients: Clients;
  readonly printer: Printer;
  readonly retry: RetryOptions;
}
