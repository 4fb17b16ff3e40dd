import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Runs a Redis call; a failure of Redis itself becomes UNAVAILABLE (retryable), naming what was being
 * done. The cause is logged, not sent: it can name a server's socket path or address.
 */
export async function unavailableOnError<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof ConnectError) throw err;
    console.error(`storage: ${what} (Redis) failed:`, err);
    throw new ConnectError(`${what} is unavailable; retry shortly`, Code.Unavailable, undefined, undefined, err);
  }
}
