import { Code, ConnectError } from "@connectrpc/connect";

/** Process exit codes, documented in `mentatctl --help`. */
export const ExitCode = {
  /** The command did what was asked (a watched run succeeded). */
  ok: 0,
  /** The server refused or failed the request, a manifest or flow is invalid, or a watched run failed. */
  failed: 1,
  /** The command line was wrong. */
  usage: 2,
  /** A watched run was cancelled. */
  cancelled: 3,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** A failure whose message is meant for the user as is, without a stack. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode = ExitCode.failed,
  ) {
    super(message);
    this.name = "CliError";
  }
}

/** One line saying what went wrong: the Connect code and message for RPC errors. */
export function describeError(err: unknown): string {
  if (err instanceof ConnectError) return `error: [${Code[err.code] ?? err.code}] ${err.rawMessage}`;
  if (err instanceof Error) return `error: ${err.message}`;
  return `error: ${String(err)}`;
}
