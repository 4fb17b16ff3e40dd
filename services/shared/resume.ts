import { Code, ConnectError } from "@connectrpc/connect";
import { isRetryable } from "./retryable.js";

/**
 * How a client carries on after losing its connection: capped exponential backoff, for as long as the
 * call keeps getting nowhere. Runtime-neutral (timers and Connect only), so mentatctl, the SDK, the
 * sidecar and the web UI share it.
 */
export interface ResumePolicy {
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  /** Gives up once the call has failed for this long without progress (a server restart must fit inside it). */
  readonly giveUpAfterMs: number;
  /** Told before each pause, so a waiting client is never silent about why. */
  readonly onRetry?: ((error: unknown, delayMs: number) => void) | undefined;
  /** Which failures are worth another attempt; `isRetryable` unless set. */
  readonly retryable?: ((error: unknown) => boolean) | undefined;
}

export const defaultResumePolicy: ResumePolicy = { initialDelayMs: 200, maxDelayMs: 5_000, giveUpAfterMs: 60_000 };

/**
 * Counts failures since the last progress and how long they have lasted; says how long to wait, or
 * that it is time to stop. The budget starts at the first failure, so a watch that sat idle for an
 * hour still gets all of it when its connection drops.
 */
class RetryClock {
  private failures = 0;
  private deadline: number | undefined;

  constructor(private readonly policy: ResumePolicy) {}

  progressed(): void {
    this.failures = 0;
    this.deadline = undefined;
  }

  /** The pause before the next attempt, or undefined once the budget is spent. */
  nextDelay(): number | undefined {
    this.deadline ??= Date.now() + this.policy.giveUpAfterMs;
    const left = this.deadline - Date.now();
    if (left <= 0) return undefined;
    const delay = Math.min(this.policy.maxDelayMs, this.policy.initialDelayMs * 2 ** this.failures);
    this.failures += 1;
    return Math.min(delay, left);
  }
}

function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Waits before the next attempt after `error`, or rethrows it when it is not worth retrying. */
async function waitOrThrow(clock: RetryClock, policy: ResumePolicy, error: unknown, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted || !(policy.retryable ?? isRetryable)(error)) throw error;
  const delay = clock.nextDelay();
  if (delay === undefined) throw error;
  policy.onRetry?.(error, delay);
  await pause(delay, signal);
}

/**
 * Runs `step` until it succeeds, retrying after connection loss. `step` must continue from where the
 * previous attempt got, which is what makes retrying safe; it calls `progressed()` when it got further,
 * which restarts the time budget, so a long transfer survives many drops.
 */
export async function withResume<T>(policy: ResumePolicy, step: (progressed: () => void) => Promise<T>, signal?: AbortSignal): Promise<T> {
  const clock = new RetryClock(policy);
  for (;;) {
    try {
      return await step(() => clock.progressed());
    } catch (error) {
      await waitOrThrow(clock, policy, error, signal);
    }
  }
}

/** A server stream whose events carry increasing sequence numbers and which reopens after a given one. */
export interface SequencedStream<E> {
  /** Opens the call for the events after `afterSeq`. */
  open(afterSeq: bigint, signal: AbortSignal | undefined): AsyncIterable<E>;
  seqOf(event: E): bigint;
  /**
   * The event after which the server rightly ends the call (stream_end, a run's final state). When set,
   * a call that ends before it is treated as a lost connection and reopened, since a server that is
   * shutting down may end calls as if they were done.
   */
  isLast?(event: E): boolean;
}

/** A stream call that ended before its last event, as a server shutting down may end it. */
class EndedEarly extends ConnectError {
  constructor(message: string) {
    super(message, Code.Unavailable);
  }
}

/**
 * Follows a sequenced server stream (Subscribe, WatchRun) across connection losses: reopens after the
 * last sequence number it yielded and drops anything at or before it, so the caller sees every event
 * once and in order. Ends when the server ends the stream.
 */
export async function* followSequenced<E>(stream: SequencedStream<E>, afterSeq: bigint, policy: ResumePolicy, signal?: AbortSignal): AsyncGenerator<E> {
  const clock = new RetryClock(policy);
  let last = afterSeq;
  for (;;) {
    try {
      for await (const event of stream.open(last, signal)) {
        const seq = stream.seqOf(event);
        if (seq <= last) continue;
        last = seq;
        clock.progressed();
        yield event;
        if (stream.isLast?.(event)) return;
      }
      if (stream.isLast) throw new EndedEarly(`the server ended the call after event ${last}, before its last event`);
      return;
    } catch (error) {
      await waitOrThrow(clock, policy, error, signal);
    }
  }
}

/** How far a reopened watch looks back beyond its own start, for clocks that disagree a little. */
const clockSkewMarginMs = 5_000;

/**
 * Follows a server stream without sequence numbers whose reopened call repeats what is still current
 * (WatchStreams announces every open stream first): events whose `keyOf` was seen already are dropped.
 * A reopened call is told since when to repeat what changed (`since`, the watch's start less a margin
 * for clock skew between client and server), so what happened during a gap is not missed.
 * Such a watch has no last event, so a call the server ends is reopened like a lost one.
 */
export async function* followDeduplicated<E>(
  open: (signal: AbortSignal | undefined, since: Date | undefined) => AsyncIterable<E>,
  keyOf: (event: E) => string,
  policy: ResumePolicy,
  signal?: AbortSignal,
): AsyncGenerator<E> {
  const clock = new RetryClock(policy);
  const seen = new Set<string>();
  const since = new Date(Date.now() - clockSkewMarginMs);
  let reopened = false;
  for (;;) {
    try {
      for await (const event of open(signal, reopened ? since : undefined)) {
        clock.progressed();
        const key = keyOf(event);
        if (seen.has(key)) continue;
        seen.add(key);
        yield event;
      }
      throw new EndedEarly("the server ended a watch that never ends by itself");
    } catch (error) {
      await waitOrThrow(clock, policy, error, signal);
      reopened = true;
    }
  }
}
