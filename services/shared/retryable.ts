import { Code, ConnectError } from "@connectrpc/connect";

/**
 * The mesh's one answer to "may the same call succeed if it is made again?". Runtime-neutral, like
 * resume.ts, so mentatctl, the SDK, the web UI, the sidecar and the orchestrator share it.
 *
 * Always retryable: the server or the path to it went away, never the request being wrong.
 * - Unavailable: a service or its backend is down (every store outage surfaces as this, within a bound);
 * - DeadlineExceeded: no answer in time;
 * - Aborted: a conflict (a lease, a concurrent write) that a fresh attempt resolves;
 * - Canceled: a peer that dies mid-call resets its HTTP/2 streams with CANCEL. A caller that cancels on
 *   purpose stops through its own abort signal before it asks this question;
 * - a connection that dropped before any Connect code: a Node socket error (ECONNRESET, EPIPE…) or a
 *   browser fetch's TypeError ("Failed to fetch").
 *
 * Everything else is the caller's to fix (InvalidArgument, NotFound, PermissionDenied, DataLoss…),
 * except what a caller opts into below, because only some retries can afford them.
 */
export interface RetryableOptions {
  /**
   * ResourceExhausted too: a limit (open streams per user, a quota) that a later attempt may find
   * lifted. Only for retries spaced by a backoff policy and bounded in count (node attempts, the
   * sidecar's transfers); a client reconnecting at once would only hit the same limit for a minute.
   */
  readonly limits?: boolean;
  /**
   * Unknown and Internal too: how an HTTP/2 stream broken by anything but CANCEL or REFUSED_STREAM
   * (a proxy's INTERNAL_ERROR reset, a body cut short) reaches a client. Only for a caller whose calls
   * are plain transfers it can repeat (the sidecar's uploads, downloads and relays), where a server
   * bug retried costs a bounded number of attempts.
   */
  readonly brokenStreams?: boolean;
}

const alwaysRetryable: ReadonlySet<Code> = new Set([Code.Unavailable, Code.DeadlineExceeded, Code.Aborted, Code.Canceled]);

/** Node error codes of a connection lost or refused; a local failure (ENOENT, EACCES…) is not among them. */
const networkErrorCodes: ReadonlySet<string> = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EAI_AGAIN",
  "ERR_STREAM_PREMATURE_CLOSE",
]);

export function isRetryable(error: unknown, options: RetryableOptions = {}): boolean {
  if (droppedWithoutCode(error)) return true;
  if (!(error instanceof ConnectError)) return false;
  if (alwaysRetryable.has(error.code)) return true;
  if (options.limits && error.code === Code.ResourceExhausted) return true;
  return options.brokenStreams === true && (error.code === Code.Unknown || error.code === Code.Internal);
}

function droppedWithoutCode(error: unknown): boolean {
  const underlying = error instanceof ConnectError && error.code === Code.Unknown ? error.cause : error;
  if (underlying instanceof TypeError) return true;
  if (!(underlying instanceof Error && "code" in underlying && typeof underlying.code === "string")) return false;
  return networkErrorCodes.has(underlying.code) || underlying.code.startsWith("ERR_HTTP2_");
}
