import { redisUnavailable } from "../shared/redis.js";

/**
 * Runs a Redis call; a failure of Redis itself becomes UNAVAILABLE (retryable), naming what was being
 * done. The cause is logged, not sent: it can name a server's socket path or address.
 */
export async function unavailableOnError<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    return redisUnavailable(what)(err);
  }
}
