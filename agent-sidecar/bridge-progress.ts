import { randomUUID } from "node:crypto";
import { readTextIfPresent } from "./optional-file.js";
import type { JsonValue } from "@bufbuild/protobuf";
import { writeAtomically } from "./atomic-write.js";
import { EventSequence } from "./event-reporter.js";
import type { PlainStdoutSummary } from "./plain-stdout.js";

/**
 * How far a bridged sidecar reported the agent's stdout, kept on the shared volume so that a sidecar
 * restarted mid-run (kubelet restarts a native sidecar that died) resumes there instead of reporting
 * the same events twice.
 */
export interface BridgeProgress {
  /** Bytes of stdout whose lines' events are acknowledged by the orchestrator; always a line end. */
  readonly offset: number;
  /** What those lines said (the result line, the last error), since the successor does not read them. */
  readonly summary: PlainStdoutSummary;
  /** Pins of the result whose outputs are acknowledged (they are published once the agent exited). */
  readonly resultPins: readonly string[];
  /**
   * The id the stdout lines' events are numbered under, recorded before the first report, so every
   * sidecar of the pod numbers them alike.
   */
  readonly reporterId: string;
  /**
   * The number of the last event of the lines up to `offset`. A successor numbers the lines after it
   * from here, so the orchestrator drops those its predecessor had reported but not yet recorded here.
   */
  readonly eventSeq: number;
}

/** The progress a previous sidecar of this pod recorded, if any. */
export async function readBridgeProgress(path: string): Promise<BridgeProgress | undefined> {
  const text = await readTextIfPresent(path);
  if (text === undefined) return undefined;
  // Written atomically by us: anything else in it is a broken volume, not a half-written file.
  const parsed = JSON.parse(text) as {
    offset?: unknown;
    result?: JsonValue;
    hasResult?: unknown;
    errorMessage?: unknown;
    resultPins?: unknown;
    reporterId?: unknown;
    eventSeq?: unknown;
  };
  const { offset, result, hasResult, errorMessage, resultPins, reporterId, eventSeq } = parsed;
  if (
    !isCount(offset) ||
    !isCount(eventSeq) ||
    typeof reporterId !== "string" ||
    reporterId === "" ||
    typeof hasResult !== "boolean" ||
    typeof errorMessage !== "string" ||
    !Array.isArray(resultPins) ||
    !resultPins.every((pin) => typeof pin === "string")
  ) {
    throw new Error(`${path} is not a progress record: ${text.slice(0, 80)}`);
  }
  return { offset, summary: { result, hasResult, errorMessage }, resultPins, reporterId, eventSeq };
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/**
 * Records progress in order, each step only once what it covers is acknowledged and every earlier step
 * was recorded; steps that pile up while a write is under way collapse into the latest.
 */
export class BridgeProgressRecorder {
  private acknowledged: Promise<void> = Promise.resolve();
  private writing: Promise<void> = Promise.resolve();
  /** The latest progress handed to the writer. */
  private latest: BridgeProgress;
  /** Whether a write not yet started will take `latest`. */
  private queued = false;

  private constructor(
    private readonly path: string,
    start: BridgeProgress,
  ) {
    this.latest = start;
  }

  /**
   * Resumes what a previous sidecar of this pod recorded, or records a fresh start (a new reporter id,
   * nothing reported) before anything is reported, so a successor numbers events under the same id.
   */
  static async open(path: string): Promise<BridgeProgressRecorder> {
    const resumed = await readBridgeProgress(path);
    if (resumed) return new BridgeProgressRecorder(path, resumed);
    const start: BridgeProgress = {
      offset: 0,
      summary: { result: undefined, hasResult: false, errorMessage: "" },
      resultPins: [],
      reporterId: randomUUID(),
      eventSeq: 0,
    };
    const recorder = new BridgeProgressRecorder(path, start);
    recorder.record(start);
    await recorder.writing;
    return recorder;
  }

  /** Where stdout is to be read from and its events numbered: just after what is recorded. */
  get resumeAt(): { readonly offset: number; readonly summary: PlainStdoutSummary; readonly sequence: EventSequence } {
    const { offset, summary, reporterId, eventSeq } = this.latest;
    return { offset, summary, sequence: new EventSequence(reporterId, BigInt(eventSeq)) };
  }

  /** Result pins published already, by this sidecar or a previous one. */
  get publishedResultPins(): ReadonlySet<string> {
    return new Set(this.latest.resultPins);
  }

  /**
   * Records how far stdout is reported once `delivered` resolves. A delivery that failed stops recording
   * for good: the lines from there on were perhaps not reported, so a successor must read them again.
   */
  after(delivered: Promise<void>, progress: Pick<BridgeProgress, "offset" | "summary" | "eventSeq">): void {
    // The failure is the reporter's to surface (at its final flush), not this bookkeeping's.
    delivered.catch(() => undefined);
    this.acknowledged = this.acknowledged.then(() => delivered).then(() => this.record({ ...this.latest, ...progress }));
    this.acknowledged.catch(() => undefined);
  }

  /**
   * Records, and waits until it is written, that the output of a result pin is acknowledged; called
   * once stdout is read, so the offset recorded with it is final.
   */
  async resultPublished(pin: string): Promise<void> {
    await this.settle();
    this.record({ ...this.latest, resultPins: [...this.latest.resultPins, pin] });
    await this.writing;
  }

  /** Waits until every acknowledged step is written; throws if a write failed. */
  async settle(): Promise<void> {
    await this.acknowledged.catch(() => undefined);
    await this.writing;
  }

  private record(progress: BridgeProgress): void {
    this.latest = progress;
    if (this.queued) return;
    this.queued = true;
    this.writing = this.writing.then(() => {
      this.queued = false;
      const { summary, ...rest } = this.latest;
      return writeAtomically(this.path, JSON.stringify({ ...rest, ...summary }));
    });
    this.writing.catch(() => undefined);
  }
}
