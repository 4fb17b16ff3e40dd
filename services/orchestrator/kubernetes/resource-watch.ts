import { setTimeout as sleep } from "node:timers/promises";
import { BatchV1Api, type KubeConfig, type V1Job, type V1Status, Watch } from "@kubernetes/client-node";

/** What one look at the Job showed: its current state, that it no longer exists, or that the watch had to start over (and why). */
export type JobUpdate =
  | { readonly kind: "present"; readonly job: V1Job }
  | { readonly kind: "deleted" }
  | { readonly kind: "resync"; readonly why: string };

export interface JobWatchOptions {
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  readonly name: string;
  readonly signal: AbortSignal;
  /** Cap of the exponential backoff between attempts after a failed list or watch. */
  readonly retryMaxMs: number;
}

type WatchItem = { readonly type: string; readonly object: unknown };
type WatchEnd = { readonly error: unknown };

const retryBaseMs = 100;

/**
 * Every state of one Job, from now until the caller stops iterating or the signal aborts: a list
 * (which also yields the current state), then a watch from the list's resourceVersion. A watch that
 * ends (server timeout, restart, idle client timeout) is resumed from the last resourceVersion seen,
 * so no change is missed; a 410 Gone (that version was compacted away) starts over with a fresh list.
 * Failed requests are retried with capped exponential backoff.
 */
export async function* watchJob(options: JobWatchOptions): AsyncGenerator<JobUpdate> {
  const { kubeConfig, namespace, name, signal } = options;
  const batch = kubeConfig.makeApiClient(BatchV1Api);
  const watcher = new Watch(kubeConfig);
  const path = `/apis/batch/v1/namespaces/${encodeURIComponent(namespace)}/jobs`;
  const fieldSelector = `metadata.name=${name}`;
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
        list = await batch.listNamespacedJob({ namespace, fieldSelector });
      } catch (err) {
        yield { kind: "resync", why: `listing Job ${name} failed: ${describeApiError(err)}` };
        await backoff();
        continue;
      }
      resourceVersion = list.metadata?.resourceVersion;
      const job = list.items[0];
      yield job ? { kind: "present", job } : { kind: "deleted" };
      if (resourceVersion === undefined) {
        yield { kind: "resync", why: `the Job list for ${name} carried no resourceVersion` };
        await backoff();
        continue;
      }
    }

    const events = new WatchEvents();
    const started = watcher.watch(
      path,
      { fieldSelector, resourceVersion, allowWatchBookmarks: true },
      (type, object) => events.push({ type, object }),
      (error) => events.end({ error }),
    );
    const stop = () => void started.then((controller) => controller.abort());
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
        const object = item.object as V1Job;
        resourceVersion = object.metadata?.resourceVersion ?? resourceVersion;
        if (item.type === "BOOKMARK") continue;
        failures = 0;
        yield item.type === "DELETED" ? { kind: "deleted" } : { kind: "present", job: object };
      }
      const end = events.ended;
      if (end?.error !== undefined && end.error !== null) {
        if (statusCodeOf(end.error) === 410) gone = true;
        // The client drops a watch that was idle for 30 s; resuming from the last version is all it takes.
        else if (!isIdleTimeout(end.error)) failed = `watch failed: ${describeApiError(end.error)}`;
      }
    } finally {
      signal.removeEventListener("abort", stop);
      stop();
    }
    if (gone) {
      yield { kind: "resync", why: `watch of Job ${name} expired (410 Gone); listing again` };
      resourceVersion = undefined;
    } else if (failed !== undefined) {
      yield { kind: "resync", why: failed };
      await backoff();
    }
  }
}

/** Callbacks of one watch request as an async iterable that ends when the request does. */
class WatchEvents implements AsyncIterable<WatchItem> {
  private readonly items: WatchItem[] = [];
  private wake: (() => void) | undefined;
  ended: WatchEnd | undefined;

  push(item: WatchItem): void {
    if (this.ended) return;
    this.items.push(item);
    this.wake?.();
  }

  end(end: WatchEnd): void {
    this.ended ??= end;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<WatchItem> {
    for (;;) {
      const item = this.items.shift();
      if (item !== undefined) {
        yield item;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }
}

function statusCodeOf(err: unknown): number | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const { statusCode, code } = err as { statusCode?: unknown; code?: unknown };
  if (typeof statusCode === "number") return statusCode;
  return typeof code === "number" ? code : undefined;
}

function isIdleTimeout(err: unknown): boolean {
  return err instanceof Error && err.name === "TimeoutError";
}

/** An API error's message without the client's dump of response headers. */
export function describeApiError(err: unknown): string {
  const body = typeof err === "object" && err !== null ? (err as { body?: unknown }).body : undefined;
  const bodyMessage = typeof body === "string" ? safeStatusMessage(body) : typeof body === "object" && body !== null ? (body as V1Status).message : undefined;
  const code = statusCodeOf(err);
  if (bodyMessage) return code === undefined ? bodyMessage : `${code} ${bodyMessage}`;
  if (err instanceof Error) return err.message.split("\n")[0] ?? err.message;
  return String(err);
}

function safeStatusMessage(body: string): string | undefined {
  try {
    return (JSON.parse(body) as V1Status).message;
  } catch {
    return body.slice(0, 200) || undefined;
  }
}
