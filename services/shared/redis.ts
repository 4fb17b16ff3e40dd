import { Redis } from "ioredis";
import { integerVar, type Env } from "./env.js";
import { storeUnavailableError } from "./store-unavailable.js";

/** How long a call may wait on Redis before it answers UNAVAILABLE (`REDIS_TIMEOUT_MS`). */
export const DEFAULT_REDIS_TIMEOUT_MS = 2_000;
// Reconnect attempts back off to this, so calls work again at most this long after Redis is back.
const MAX_RECONNECT_DELAY_MS = 500;

export function redisTimeoutMsFromEnv(env: Env): number {
  return integerVar(env, "REDIS_TIMEOUT_MS", DEFAULT_REDIS_TIMEOUT_MS, { min: 10 });
}

export interface RedisClientOptions {
  /** Which part of the mesh uses the client, for the log line when Redis becomes unreachable. */
  readonly user: string;
  /** Bound on any wait for Redis: connecting, and every command. */
  readonly timeoutMs: number;
}

/**
 * The one way the mesh connects to Redis. Faults are loud and bounded: a command sent while the
 * connection is down fails at once, one in flight when it drops fails at once (never silently resent
 * later, when its caller has long been told otherwise), and one Redis does not answer fails after
 * `timeoutMs`. Reconnecting goes on in the background, so calls succeed again as soon as Redis is back.
 */
export async function connectRedis(url: string, options: RedisClientOptions): Promise<Redis> {
  const redis = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: options.timeoutMs,
    connectTimeout: options.timeoutMs,
    retryStrategy: (attempt) => Math.min(attempt * 50, MAX_RECONNECT_DELAY_MS),
  });
  reportOutages(redis, options.user);
  await redis.connect();
  return redis;
}

/**
 * A second connection with the same settings, connected, for commands that hold it (XREAD BLOCK,
 * SUBSCRIBE). A blocking read must block for less than the command timeout (`blockingReadMs`), or it
 * reads as a fault.
 */
export async function dedicatedConnection(redis: Redis): Promise<Redis> {
  const connection = redis.duplicate({ lazyConnect: true });
  // Its failures reach its readers; the outage itself is logged once, by the connection it came from.
  connection.on("error", () => undefined);
  try {
    await connection.connect();
  } catch (err) {
    connection.disconnect();
    throw err;
  }
  return connection;
}

/** How long a blocking read on a dedicated connection may wait, so it never trips the command timeout. */
export function blockingReadMs(redis: Redis): number {
  return Math.max(1, Math.floor((redis.options.commandTimeout ?? DEFAULT_REDIS_TIMEOUT_MS) / 2));
}

// One line per outage rather than one per reconnect attempt; without an "error" listener ioredis
// reports every failed attempt as an unhandled error.
function reportOutages(redis: Redis, user: string): void {
  let reported = false;
  redis.on("error", (err: Error) => {
    if (reported) return;
    reported = true;
    console.warn(`${user}: Redis unreachable (${err.message}); calls answer UNAVAILABLE until it is back`);
  });
  redis.on("ready", () => {
    reported = false;
  });
}

/**
 * A `catch` handler that turns a failure of Redis into UNAVAILABLE (see store-unavailable.ts); `what`
 * names what is unavailable, e.g. "the run store".
 */
export function redisUnavailable(what: string): (err: unknown) => never {
  return (err) => {
    throw storeUnavailableError(what, "Redis did not answer", err);
  };
}

/** Runs a Redis call; a failure of Redis itself becomes UNAVAILABLE naming `what`. */
export async function redisCall<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw storeUnavailableError(what, "Redis did not answer", err);
  }
}
