import type { ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { attemptLine, parseWarmLine } from "../../agent-contract/warm-protocol.js";
import type { PlainInput } from "../../agent-contract/plain-contract.js";
import { type Deferred, deferred } from "../shared/deferred.js";

/** How an agent's process, or its part of a warm worker, ended. */
export interface AttemptEnd {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly error?: Error;
  /** Set when the warm worker serving the attempt died: a failure worth a retry on another worker. */
  readonly crash?: string;
}

/** One attempt's stdout lines and end, from a process of its own or a warm worker. */
export interface AttemptChannel {
  /** The agent's plain-contract stdout lines for this attempt. */
  readonly lines: AsyncIterable<string>;
  /** How the attempt ended; resolves once `lines` has ended. */
  readonly ended: Promise<AttemptEnd>;
  /** The last stderr bytes written during the attempt. */
  stderrTail(): string;
}

const stderrTailBytes = 4096;

/** Lines pushed by one side and pulled by an attempt, ending once `end` is called. */
class LineQueue implements AsyncIterable<string> {
  private readonly lines: string[] = [];
  private done = false;
  private waiting: Deferred<void> | undefined;

  push(line: string): void {
    this.lines.push(line);
    this.waiting?.resolve();
  }

  end(): void {
    this.done = true;
    this.waiting?.resolve();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<string> {
    for (;;) {
      const line = this.lines.shift();
      if (line !== undefined) yield line;
      else if (this.done) return;
      else {
        this.waiting = deferred();
        await this.waiting.promise;
        this.waiting = undefined;
      }
    }
  }
}

/**
 * A warm worker process as the executor sees it (agent-contract/warm-protocol.ts): ready once it says
 * so, then serving one attempt at a time over its stdin and stdout.
 */
export class WarmWorker {
  /** True once the worker said it is ready; false if it exited before. */
  readonly ready: Promise<boolean>;
  readonly exited: Promise<AttemptEnd>;
  /** Attempts handed to this worker so far. */
  attempts = 0;
  private current: { readonly lines: LineQueue; readonly end: Deferred<AttemptEnd>; stderr: string } | undefined;
  private stderr = "";
  /** How the worker ended, once it has: an attempt handed to it then ends at once. */
  private gone: AttemptEnd | undefined;

  constructor(
    private readonly child: ChildProcess,
    private readonly kill: (child: ChildProcess) => void,
  ) {
    const ready = deferred<boolean>();
    this.ready = ready.promise;
    this.exited = new Promise<AttemptEnd>((resolve) => {
      child.once("error", (error) => resolve({ code: null, signal: null, error }));
      child.once("close", (code, signal) => resolve({ code, signal }));
    });
    // A worker that stops reading its stdin is dying; its exit tells what happened.
    child.stdin?.on("error", () => undefined);
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-stderrTailBytes);
      if (this.current) this.current.stderr = (this.current.stderr + chunk).slice(-stderrTailBytes);
    });
    if (child.stdout) {
      createInterface({ input: child.stdout, crlfDelay: Infinity }).on("line", (line) => {
        const warm = parseWarmLine(line);
        if (warm?.kind === "ready") ready.resolve(true);
        else if (warm?.kind === "attempt_end") this.endAttempt({ code: warm.exitCode, signal: null });
        else this.current?.lines.push(line);
      });
    }
    void this.exited.then((end) => {
      // Whatever the worker started must not outlive it unobserved.
      this.kill(child);
      ready.resolve(false);
      const how = end.error ? `could not start: ${end.error.message}` : end.signal ? `was killed by ${end.signal}` : `exited with code ${end.code}`;
      this.gone = { ...end, crash: `warm worker pid ${this.pid ?? "?"} ${how} mid-attempt` };
      this.endAttempt(this.gone);
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The last stderr bytes of the worker, for a start-up failure. */
  get stderrTail(): string {
    return this.stderr;
  }

  /** Hands the worker an attempt; aborting `signal` kills the worker (an agent cannot be trusted to stop). */
  serve(input: PlainInput, runToken: string, signal: AbortSignal): AttemptChannel {
    const attempt = { lines: new LineQueue(), end: deferred<AttemptEnd>(), stderr: "" };
    this.current = attempt;
    this.attempts += 1;
    const stop = () => this.kill(this.child);
    signal.addEventListener("abort", stop, { once: true });
    void attempt.end.promise.then(() => signal.removeEventListener("abort", stop));
    if (this.gone) this.endAttempt(this.gone);
    else this.child.stdin?.write(`${attemptLine(input, runToken)}\n`);
    return { lines: attempt.lines, ended: attempt.end.promise, stderrTail: () => attempt.stderr };
  }

  /** Closes the worker's stdin so it stops once its attempt (if any) ends; kills it after `graceMs`. */
  async drain(graceMs: number): Promise<void> {
    this.child.stdin?.end();
    const timer = setTimeout(() => this.kill(this.child), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  private endAttempt(end: AttemptEnd): void {
    const attempt = this.current;
    if (!attempt) return;
    this.current = undefined;
    attempt.lines.end();
    attempt.end.resolve(end);
  }
}

/** How many workers a pool keeps and how long each serves. */
export interface WarmPoolSettings {
  readonly size: number;
  readonly maxAttemptsPerWorker: number;
  /** How long a drained worker may take to exit before it is killed. */
  readonly stopGraceMs: number;
}

/** What a pool is doing, as its log lines say. */
interface WarmPoolStats {
  readonly agent: string;
  readonly size: number;
  readonly idle: number;
  readonly busy: number;
  readonly starting: number;
  /** Worker processes started since the pool was made. */
  readonly started: number;
  /** Workers retired after their attempts or a failure. */
  readonly recycled: number;
}

/**
 * Keeps `size` warm workers of one agent started, hands each attempt an idle one (waiting while all
 * are busy), retires a worker after `maxAttemptsPerWorker` attempts or a failed attempt and starts a
 * fresh one. A worker that dies before it is ready fails the attempts waiting for one, loudly, rather
 * than being restarted in a loop; the next attempt tries again.
 */
export class WarmPool {
  private readonly live = new Set<WarmWorker>();
  private readonly idle: WarmWorker[] = [];
  private readonly stopping = new Set<Promise<void>>();
  private waiting: { readonly worker: Deferred<WarmWorker | Error>; readonly signal: AbortSignal }[] = [];
  private closing = false;
  private started = 0;
  private recycled = 0;
  /** Workers started but not yet ready. */
  private startingCount = 0;

  constructor(
    readonly agent: string,
    private readonly settings: WarmPoolSettings,
    private readonly start: () => WarmWorker,
    private readonly log: (line: string) => void,
  ) {}

  /** Starts workers up to the pool's size. */
  fill(): void {
    while (!this.closing && this.live.size < this.settings.size) this.startWorker();
  }

  /** An idle worker for one attempt, once one is ready; `release` it after. Throws if workers cannot start. */
  async acquire(signal: AbortSignal): Promise<WarmWorker> {
    if (this.closing) throw new Error(`the warm pool of ${this.agent} is shut down`);
    this.fill();
    const idle = this.idle.shift();
    if (idle) return idle;
    const waiter = { worker: deferred<WarmWorker | Error>(), signal };
    this.waiting.push(waiter);
    const aborted = () => waiter.worker.resolve(new Error("aborted while waiting for a warm worker"));
    signal.addEventListener("abort", aborted, { once: true });
    const got = await waiter.worker.promise;
    signal.removeEventListener("abort", aborted);
    this.waiting = this.waiting.filter((w) => w !== waiter);
    if (got instanceof Error) throw got;
    return got;
  }

  /** Gives a worker back after an attempt: idle again, or retired when it failed or served its share. */
  release(worker: WarmWorker, succeeded: boolean): void {
    if (!this.live.has(worker)) return;
    if (succeeded && worker.attempts < this.settings.maxAttemptsPerWorker && !this.closing) {
      this.makeIdle(worker);
      return;
    }
    this.recycled += 1;
    this.say(`retiring worker pid ${worker.pid} after ${worker.attempts} attempt(s)${succeeded ? "" : ", the last one failed"}`);
    this.retire(worker);
    this.fill();
  }

  private stats(): WarmPoolStats {
    return {
      agent: this.agent,
      size: this.settings.size,
      idle: this.idle.length,
      busy: Math.max(0, this.live.size - this.idle.length - this.startingCount),
      starting: this.startingCount,
      started: this.started,
      recycled: this.recycled,
    };
  }

  /** Stops idle workers now and busy ones once their attempt ends (or after the grace); resolves when all have exited. */
  async close(): Promise<void> {
    this.closing = true;
    for (const waiter of this.waiting) waiter.worker.resolve(new Error(`the warm pool of ${this.agent} is shutting down`));
    for (const worker of [...this.live]) this.retire(worker);
    await Promise.all(this.stopping);
    this.say("stopped");
  }

  /** Logs `what` with the pool's state after it, e.g. `started worker pid 7 [idle 0, busy 0, starting 1; 1 started, 0 recycled]`. */
  private say(what: string): void {
    const { idle, busy, starting, started, recycled } = this.stats();
    this.log(`${what} [idle ${idle}, busy ${busy}, starting ${starting}; ${started} started, ${recycled} recycled]`);
  }

  private startWorker(): void {
    const worker = this.start();
    this.started += 1;
    this.startingCount += 1;
    this.live.add(worker);
    this.say(`started worker pid ${worker.pid} (${this.live.size}/${this.settings.size})`);
    void worker.ready.then((ready) => {
      this.startingCount -= 1;
      if (ready) {
        if (this.live.has(worker)) this.makeIdle(worker);
        return;
      }
      const failure = new Error(
        `a warm worker of ${this.agent} exited before it was ready${worker.stderrTail.trim() ? `: ${worker.stderrTail.trim().split("\n").at(-1)}` : ""}`,
      );
      this.say(failure.message);
      this.live.delete(worker);
      for (const waiter of this.waiting.splice(0)) waiter.worker.resolve(failure);
    });
    void worker.exited.then(() => {
      if (!this.live.delete(worker)) return;
      // Died while idle or busy (a busy one's attempt hears it through its channel): replace it.
      const at = this.idle.indexOf(worker);
      if (at !== -1) this.idle.splice(at, 1);
      this.say(`worker pid ${worker.pid} exited`);
      void worker.ready.then((ready) => ready && this.fill());
    });
  }

  private makeIdle(worker: WarmWorker): void {
    const waiter = this.waiting.find((w) => !w.signal.aborted);
    if (waiter) {
      this.waiting = this.waiting.filter((w) => w !== waiter);
      waiter.worker.resolve(worker);
    } else {
      this.idle.push(worker);
    }
  }

  private retire(worker: WarmWorker): void {
    this.live.delete(worker);
    const at = this.idle.indexOf(worker);
    if (at !== -1) this.idle.splice(at, 1);
    const stopped = worker.drain(this.settings.stopGraceMs);
    this.stopping.add(stopped);
    void stopped.then(() => this.stopping.delete(stopped));
  }
}
