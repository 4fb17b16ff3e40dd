import { setTimeout as sleep } from "node:timers/promises";
import { type KubeConfig, type KubernetesObject, type V1Status, Watch } from "@kubernetes/client-node";
import { Pushable } from "../../shared/pushable.js";

/**
 * What a watch saw: the full set of matching objects (after each list), one object added or changed,
 * one deleted, or that the watch had to start over (and why).
 */
export type WatchUpdate<T> =
  | { readonly kind: "listed"; readonly objects: readonly T[] }
  | { readonly kind: "changed"; readonly object: T }
  | { readonly kind: "deleted"; readonly object: T }
  | { readonly kind: "resync"; readonly why: string };

export interface ResourceWatchOptions<T> {
  readonly kubeConfig: KubeConfig;
  /** The collection, e.g. `/apis/batch/v1/namespaces/ns/jobs`. */
  readonly path: string;
  readonly fieldSelector?: string;
  readonly labelSelector?: string;
  /** Lists the collection with the same selectors. */
  readonly list: () => Promise<{ readonly metadata?: { readonly resourceVersion?: string }; readonly items: T[] }>;
  readonly signal: AbortSignal;
  /** Cap of the exponential backoff between attempts after a failed list or watch. */
  readonly retryMaxMs: number;
}

type WatchItem = { readonly type: string; readonly object: unknown };

const retryBaseMs = 100;

/**
 * Every change to the selected objects until the caller stops iterating or the signal aborts: a list,
 * then a watch from the list's resourceVersion. A watch that ends (server timeout, restart, the
 * client's 30 s idle timeout) resumes from the last resourceVersion seen, so no change is missed; a
 * 410 Gone (that version was compacted away) starts over with a fresh list. Failed requests are
 * retried with capped exponential backoff.
 */
export async function* watchResource<T extends KubernetesObject>(options: ResourceWatchOptions<T>): AsyncGenerator<WatchUpdate<T>> {
  const { signal } = options;
  const watcher = new Watch(options.kubeConfig);
  const selectors = {
    ...(options.fieldSelector ? { fieldSelector: options.fieldSelector } : {}),
    ...(options.labelSelector ? { labelSelector: options.labelSelector } : {}),
  };
  let resourceVersion: string | undefined;
  let failures = 0;
  const backoff = async () => {
    failures += 1;
    await sleep(Math.min(options.retryMaxMs, retryBaseMs * 2 ** (failures - 1)), undefined, { signal }).catch(() => undefined);
  };

  while (!signal.aborted) {
    if (resourceVersion === undefined) {
      let list;
      try {
        list = await options.list();
      } catch (err) {
        yield { kind: "resync", why: `listing ${options.path} failed: ${describeApiError(err)}` };
        await backoff();
        continue;
      }
      resourceVersion = list.metadata?.resourceVersion;
      yield { kind: "listed", objects: list.items };
      if (resourceVersion === undefined) {
        yield { kind: "resync", why: `the list of ${options.path} carried no resourceVersion` };
        await backoff();
        continue;
      }
    }

    // The caller may have aborted while this generator was suspended at a yield; a listener added now would never fire.
    if (signal.aborted) return;
    const events = new WatchEvents();
    const started = watcher.watch(
      options.path,
      { ...selectors, resourceVersion, allowWatchBookmarks: true },
      (type, object) => events.push({ type, object }),
      (error: unknown) => events.end(error),
    );
    // The client hands out the request's controller only once response headers arrive: stop reading
    // at once, and cancel the request whenever it becomes cancellable.
    const stop = () => {
      events.end(null);
      void started.then((controller) => controller.abort());
    };
    signal.addEventListener("abort", stop, { once: true });
    let gone = false;
    let failed: string | undefined;
    try {
      for await (const item of events) {
        if (item.type === "ERROR") {
          const status = item.object as V1Status;
          if (status.code === 410) gone = true;
          else failed = `watch error ${status.code ?? ""}: ${status.message ?? "unknown"}`;
          break;
        }
        const object = item.object as T;
        resourceVersion = object.metadata?.resourceVersion ?? resourceVersion;
        if (item.type === "BOOKMARK") continue;
        failures = 0;
        yield item.type === "DELETED" ? { kind: "deleted", object } : { kind: "changed", object };
      }
      const error = events.error;
      if (!gone && failed === undefined && error !== undefined && error !== null) {
        if (statusCodeOf(error) === 410) gone = true;
        // The client drops a watch that was idle for 30 s; resuming from the last version is all it takes.
        else if (!(error instanceof Error && error.name === "TimeoutError")) failed = `watch failed: ${describeApiError(error)}`;
      }
    } finally {
      signal.removeEventListener("abort", stop);
      stop();
    }
    if (signal.aborted) return;
    if (gone) {
      yield { kind: "resync", why: `watch of ${options.path} expired (410 Gone); listing again` };
      resourceVersion = undefined;
    } else if (failed !== undefined) {
      yield { kind: "resync", why: failed };
      await backoff();
    }
  }
}

/** Callbacks of one watch request as an async iterable that ends when the request does. */
class WatchEvents extends Pushable<WatchItem> {
  /** What ended the request: null or undefined for a clean end. */
  error: unknown;

  override end(error?: unknown): void {
    if (!this.ended) this.error = error;
    super.end();
  }
}

function statusCodeOf(err: unknown): number | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const { statusCode, code } = err as { statusCode?: unknown; code?: unknown };
  if (typeof statusCode === "number") return statusCode;
  return typeof code === "number" ? code : undefined;
}

/** An API error's status code and message, without the client's dump of response headers. */
export function describeApiError(err: unknown): string {
  const body = typeof err === "object" && err !== null ? (err as { body?: unknown }).body : undefined;
  const bodyMessage = typeof body === "string" ? statusMessage(body) : typeof body === "object" && body !== null ? (body as V1Status).message : undefined;
  const code = statusCodeOf(err);
  if (bodyMessage) return code === undefined ? bodyMessage : `${code} ${bodyMessage}`;
  if (err instanceof Error) return err.message.split("\n")[0] ?? err.message;
  return String(err);
}

function statusMessage(body: string): string | undefined {
  try {
    return (JSON.parse(body) as V1Status).message;
  } catch {
    return body.slice(0, 200) || undefined;
  }
}
