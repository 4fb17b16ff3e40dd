import { Code, ConnectError } from "@connectrpc/connect";

/** Runs a Redis call; a failure of Redis itself becomes UNAVAILABLE (retryable), naming what was being done. */
export async function unavailableOnError<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof ConnectError) throw err;
    throw new ConnectError(`${what} is unavailable (${(err as Error).message}); retry shortly`, Code.Unavailable);
  }
}
