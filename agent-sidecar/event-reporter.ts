import { randomUUID } from "node:crypto";
import type { Client } from "@connectrpc/connect";
import type { AgentEvent } from "../gen/mentatlab/v1/common_pb.js";
import type { OrchestratorService } from "../gen/mentatlab/v1/orchestrator_pb.js";
import { withRetries, type Backoff } from "./retry.js";

export interface NodeIdentity {
  readonly runId: string;
  readonly nodeId: string;
  readonly attempt: number;
}

/** Most events per ReportNodeEvents call (the proto's limit). */
const maxBatch = 1000;

/**
 * Numbers events under one reporter id, from 1: the orchestrator records each (id, number) of an
 * attempt once. A sequence that outlives its sidecar (a bridged sidecar keeps its id and count on the
 * shared volume) lets a restarted sidecar report lines again without their events being recorded twice.
 */
export class EventSequence {
  constructor(
    readonly reporterId: string,
    private numbered = 0n,
  ) {}

  /** The number of the latest event numbered; 0 before the first. */
  get last(): bigint {
    return this.numbered;
  }

  next(): bigint {
    this.numbered += 1n;
    return this.numbered;
  }
}

interface NumberedEvent {
  readonly event: AgentEvent;
  readonly reporterId: string;
  readonly seq: bigint;
}

/**
 * Sends a node's agent events to the orchestrator in order, batching whatever piled up while a call was
 * in flight, retrying through gateway blips. Notices cancellation from the orchestrator's answers.
 *
 * Every event gets a number, under this reporter's own id or a sequence the caller keeps, so a report
 * retried after its answer was lost (the orchestrator had recorded it) is not recorded twice.
 */
export class NodeEventReporter {
  private readonly own = new EventSequence(randomUUID());
  private pending: NumberedEvent[] = [];
  private sending: Promise<void> = Promise.resolve();
  private readonly cancellation = new AbortController();

  constructor(
    private readonly orchestrator: Client<typeof OrchestratorService>,
    private readonly node: NodeIdentity,
    private readonly retry: { readonly attempts: number; readonly backoff: Backoff },
  ) {}

  /** Aborted once the orchestrator says the run was cancelled. */
  get cancelled(): AbortSignal {
    return this.cancellation.signal;
  }

  /** Queues events without waiting, numbered by `sequence` (this reporter's own by default); `flush` delivers them. */
  enqueue(...events: AgentEvent[]): void {
    this.enqueueNumbered(this.own, ...events);
  }

  enqueueNumbered(sequence: EventSequence, ...events: AgentEvent[]): void {
    for (const event of events) this.pending.push({ event, reporterId: sequence.reporterId, seq: sequence.next() });
  }

  /** Queues events and waits until they are delivered; resolves with whether the run was cancelled. */
  async report(...events: AgentEvent[]): Promise<boolean> {
    this.enqueue(...events);
    await this.flush();
    return this.cancellation.signal.aborted;
  }

  /**
   * Queues one event under `sequence` and starts delivering it; resolves once it is acknowledged. A
   * failed delivery rejects here and again at the next flush, so nobody need wait on this one.
   */
  send(event: AgentEvent, sequence: EventSequence = this.own): Promise<void> {
    this.enqueueNumbered(sequence, event);
    const delivered = this.flush();
    delivered.catch(() => undefined);
    return delivered;
  }

  /** Delivers everything queued so far. */
  flush(): Promise<void> {
    const next = this.sending.then(() => this.sendPending());
    // A failed batch must not block later ones forever; the caller of this flush sees the error.
    this.sending = next.catch(() => undefined);
    return next;
  }

  private async sendPending(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = nextBatch(this.pending);
      const [first] = batch as [NumberedEvent, ...NumberedEvent[]];
      const response = await withRetries(this.retry.attempts, this.retry.backoff, undefined, () =>
        this.orchestrator.reportNodeEvents({
          ...this.node,
          events: batch.map((numbered) => numbered.event),
          reporterId: first.reporterId,
          firstEventSeq: first.seq,
        }),
      );
      this.pending = this.pending.slice(batch.length);
      if (response.cancelled) this.cancellation.abort(new Error("the run was cancelled"));
    }
  }
}

/** The longest run of pending events one report can carry: one reporter id, consecutive numbers. */
function nextBatch(pending: readonly NumberedEvent[]): readonly NumberedEvent[] {
  let length = 1;
  while (
    length < pending.length &&
    length < maxBatch &&
    pending[length]!.reporterId === pending[0]!.reporterId &&
    pending[length]!.seq === pending[length - 1]!.seq + 1n
  ) {
    length++;
  }
  return pending.slice(0, length);
}
