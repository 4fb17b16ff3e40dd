import { Code, ConnectError } from "@connectrpc/connect";

/**
 * The client's error for a store that failed beneath a service (Redis, the embedded database, object
 * storage): UNAVAILABLE, which every client retries (retryable.ts), instead of the INTERNAL an unknown
 * error would become. `what` names the store as its caller knows it ("the run store", "object
 * storage"); `reason` says what happened in words safe to send. The driver's own error is logged and
 * kept as `cause`, never sent: its text can name socket paths, files and URLs. A ConnectError passes
 * unchanged: the service already said what it means.
 */
export function storeUnavailableError(what: string, reason: string, err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  console.error(`${what} failed (${reason}):`, err);
  return new ConnectError(`${what} is unavailable (${reason}); retry shortly`, Code.Unavailable, undefined, undefined, err);
}
