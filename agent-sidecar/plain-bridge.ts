import { createReadStream } from "node:fs";
import { access, mkdir, open, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import type { JsonValue } from "@bufbuild/protobuf";
import { writeAtomically } from "./atomic-write.js";
import { BridgeProgressRecorder } from "./bridge-progress.js";
import type { NodeEventReporter } from "./event-reporter.js";
import { readTextIfPresent } from "./optional-file.js";
import type { PlainAgentExit } from "./plain-agent.js";
import { LineTail, PlainStdoutReader, type PlainStdoutHandlers } from "./plain-stdout.js";

/**
 * The files of the plain-contract bridge on the shared volume (see
 * services/orchestrator/kubernetes/plain-bridge.ts for the agent container's side).
 */
export const bridgeFiles = {
  /** `{"spec","context"}`, written by the sidecar (atomically, last); the agent container waits for it. */
  stdin: "stdin.json",
  /** The spec and context alone, which the agent container passes on as INPUT_SPEC and INPUT_CONTEXT. */
  spec: "spec.json",
  context: "context.json",
  /** The agent's stdout, appended to as it runs. */
  stdout: "stdout.ndjson",
  /** The agent's stderr. */
  stderr: "stderr.log",
  /** The agent's exit code, written (atomically) by the agent container once the agent has exited. */
  exitCode: "exit-code",
  /** Written by the sidecar once everything is delivered; the agent container exits only then. */
  delivered: "delivered",
  /** How far the sidecar reported stdout (agent-sidecar/bridge-progress.ts), for a restarted sidecar. */
  reported: "reported.json",
} as const;

export interface BridgedAgentOptions extends Omit<PlainStdoutHandlers, "onEvent"> {
  /** The bridge directory on the shared volume (MENTATLAB_PLAIN_BRIDGE). */
  readonly dir: string;
  /** Delivers the lines' events, numbered under the pod's reporter id recorded in `reported.json`. */
  readonly reporter: Pick<NodeEventReporter, "send">;
  /** Written to `stdin.json` as one JSON document, and its parts to `spec.json` and `context.json`. */
  readonly stdin: { readonly spec: JsonValue; readonly context: JsonValue };
  /** Stderr lines kept for the failure report. */
  readonly stderrTailLines: number;
  /** Stops following; the agent container is not ours to stop (the orchestrator deletes the Job). */
  readonly signal?: AbortSignal;
  /** How often the growing stdout and the exit code are looked at. */
  readonly pollMs?: number;
}

/**
 * Runs a plain-contract agent that lives in another container: hands it its spec through the shared
 * volume, follows its stdout file as it grows (with the same line reader as a wrapped agent), and
 * resolves once its exit code appears, the rest of its stdout is read and its events are acknowledged.
 * A sidecar restarted mid-run resumes after the lines its predecessor recorded as reported, numbering
 * their events as its predecessor did, so those it had reported but not yet recorded are dropped by the
 * orchestrator. On abort it resolves at once with no exit code.
 */
export async function runBridgedAgent(options: BridgedAgentOptions): Promise<PlainAgentExit> {
  const path = (name: string) => join(options.dir, name);
  await mkdir(options.dir, { recursive: true });
  // A restarted sidecar must not hand a running agent a second spec.
  if (!(await exists(path(bridgeFiles.stdin)))) {
    await writeAtomically(path(bridgeFiles.spec), JSON.stringify(options.stdin.spec));
    await writeAtomically(path(bridgeFiles.context), JSON.stringify(options.stdin.context));
    await writeAtomically(path(bridgeFiles.stdin), `${JSON.stringify(options.stdin)}\n`);
  }
  const progress = await BridgeProgressRecorder.open(path(bridgeFiles.reported));
  const { offset, summary, sequence } = progress.resumeAt;
  const stdout = new PlainStdoutReader({ onEvent: (event) => options.reporter.send(event, sequence), onOutput: options.onOutput }, summary);
  const follower = new LineFollower(
    path(bridgeFiles.stdout),
    (line, end) => {
      const acknowledged = stdout.line(line);
      // The reader takes a line's result, error and event number in synchronously, so these include it.
      progress.after(acknowledged, { offset: end, summary: stdout.summary(), eventSeq: Number(sequence.last) });
    },
    offset,
  );
  const pollMs = options.pollMs ?? 100;
  try {
    for (;;) {
      if (options.signal?.aborted) {
        await follower.readNew();
        return { exitCode: null, exitSignal: null, ...stdout.summary(), stderrTail: [] };
      }
      // Looked at before the last read: once the exit code is there, stdout is complete.
      const exitCode = await readExitCode(path(bridgeFiles.exitCode));
      await follower.readNew();
      if (exitCode !== undefined) {
        follower.end();
        // The result is published next; a sidecar restarted meanwhile must not report these lines again.
        await progress.settle();
        return {
          exitCode,
          exitSignal: null,
          ...stdout.summary(),
          stderrTail: await tailOf(path(bridgeFiles.stderr), options.stderrTailLines),
          resultProgress: { published: progress.publishedResultPins, record: (pin) => progress.resultPublished(pin) },
        };
      }
      await sleep(pollMs, undefined, { signal: options.signal }).catch(() => undefined);
    }
  } finally {
    await follower.close();
  }
}

/** Tells the agent container everything is delivered, so it may exit (and the pod complete). */
export async function markBridgeDelivered(dir: string): Promise<void> {
  await writeAtomically(join(dir, bridgeFiles.delivered), "");
}

export async function bridgeDelivered(dir: string): Promise<boolean> {
  return exists(join(dir, bridgeFiles.delivered));
}

/**
 * Reads a file that grows, by offset, handing over complete lines with the offset just after each and
 * keeping a partial last one. Lines are cut as bytes, so every offset handed over is a line end.
 */
class LineFollower {
  private handle: FileHandle | undefined;
  /** Bytes of the file read so far. */
  private offset: number;
  /** Read bytes after the last newline. */
  private partial = Buffer.alloc(0);
  private readonly buffer = Buffer.alloc(64 * 1024);

  constructor(
    private readonly path: string,
    private readonly onLine: (line: string, end: number) => void,
    start: number,
  ) {
    this.offset = start;
  }

  async readNew(): Promise<void> {
    if (!this.handle) {
      try {
        this.handle = await open(this.path, "r");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
        throw error;
      }
    }
    for (;;) {
      const { bytesRead } = await this.handle.read(this.buffer, 0, this.buffer.length, this.offset);
      if (bytesRead === 0) return;
      this.offset += bytesRead;
      this.take(this.buffer.subarray(0, bytesRead));
    }
  }

  /** The stream is complete: a last line without a newline is still a line. */
  end(): void {
    if (this.partial.length > 0) this.emit(this.partial, this.offset);
    this.partial = Buffer.alloc(0);
  }

  async close(): Promise<void> {
    await this.handle?.close();
    this.handle = undefined;
  }

  private take(chunk: Buffer): void {
    const bytes = this.partial.length > 0 ? Buffer.concat([this.partial, chunk]) : chunk;
    const first = this.offset - bytes.length;
    let start = 0;
    for (let newline = bytes.indexOf(0x0a); newline !== -1; newline = bytes.indexOf(0x0a, start)) {
      this.emit(bytes.subarray(start, newline), first + newline + 1);
      start = newline + 1;
    }
    // A copy: the read buffer is reused.
    this.partial = Buffer.from(bytes.subarray(start));
  }

  private emit(bytes: Buffer, end: number): void {
    this.onLine(bytes.toString("utf8").replace(/\r$/, ""), end);
  }
}

async function readExitCode(path: string): Promise<number | undefined> {
  const text = await readTextIfPresent(path);
  if (text === undefined) return undefined;
  const code = Number(text.trim());
  // The wrapper writes it atomically, so anything unreadable is a broken wrapper, not a half-written file.
  return Number.isInteger(code) ? code : 1;
}

/** The last lines of a file, read as a stream: stderr may be large. */
async function tailOf(path: string, limit: number): Promise<readonly string[]> {
  if (!(await exists(path))) return [];
  const tail = new LineTail(limit);
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  for await (const line of lines) tail.push(line);
  return tail.lines();
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
