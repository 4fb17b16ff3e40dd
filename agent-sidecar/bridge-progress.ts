import { readTextIfPresent } from "./optional-file.js";
import type { JsonValue } from "@bufbuild/protobuf";
import { writeAtomically } from "./atomic-write.js";
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
}

/** The progress a previous sidecar of this pod recorded, if any. */
export async function readBridgeProgress(path: string): Promise<BridgeProgress | undefined> {
  const text = await readTextIfPresent(path);
  if (text === undefined) return undefined;
  // Written atomically by us: anything else in it is a broken volume, not a half-written file.
  const parsed = JSON.parse(text) as { offset?: unknown; result?: JsonValue; hasResult?: unknown; errorMessage?: unknown; resultPins?: unknown };
  const { offset, result, hasResult, errorMessage, resultPins } = parsed;
  if (
    typeof offset !== "number" ||
    !Number.isSafeInteger(offset) ||
    offset < 0 ||
    typeof hasResult !== "boolean" ||
    typeof errorMessage !== "string" ||
    !Array.isArray(resultPins) ||
    !resultPins.every((pin) => typeof pin === "string")
  ) {
    throw new Error(`${path} is not a progress record: ${text.slice(0, 80)}`);
  }
  return { offset, summary: { result, hasResult, errorMessage }, resultPins };
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

  /** `resumed` is what the previous sidecar recorded, if any. */
  constructor(
    private readonly path: string,
    resumed: BridgeProgress | undefined,
  ) {
    this.latest = resumed ?? { offset: 0, summary: { result: undefined, hasResult: false, errorMessage: "" }, resultPins: [] };
  }

  /** Result pins published already, by this sidecar or a previous one. */
  get publishedResultPins(): ReadonlySet<string> {
    return new Set(this.latest.resultPins);
  }

  /**
   * Records how far stdout is reported once `delivered` resolves. A delivery that failed stops recording
   * for good: the lines from there on were perhaps not reported, so a successor must read them again.
   */
  after(delivered: Promise<void>, progress: Omit<BridgeProgress, "resultPins">): void {
    // The failure is the reporter's to surface (at its final flush), not this bookkeeping's.
    delivered.catch(() => undefined);
    this.acknowledged = this.acknowledged.then(() => delivered).then(() => this.record({ ...progress, resultPins: this.latest.resultPins }));
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
      const { offset, summary, resultPins } = this.latest;
      return writeAtomically(this.path, JSON.stringify({ offset, ...summary, resultPins }));
    });
    this.writing.catch(() => undefined);
  }
}
