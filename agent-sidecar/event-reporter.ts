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
 * Sends a node's agent events to the orchestrator in order, batching whatever piled up while a call was
 * in flight, retrying through gateway blips. Notices cancellation from the orchestrator's answers.
 *
 * Every event gets a number under this reporter's id, so a report retried after its answer was lost
 * (the orchestrator had recorded it) is not recorded twice.
 */
export class NodeEventReporter {
  private readonly reporterId = randomUUID();
  /** Events delivered so far: the number of the first pending event is one more. */
  private delivered = 0n;
  private pending: AgentEvent[] = [];
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

  /** Queues events without waiting; `flush` (or the next `report`) delivers them. */
  enqueue(...events: AgentEvent[]): void {
    this.pending.push(...events);
  }

  /** Queues events and waits until they are delivered; resolves with whether the run was cancelled. */
  async report(...events: AgentEvent[]): Promise<boolean> {
    this.enqueue(...events);
    await this.flush();
    return this.cancellation.signal.aborted;
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
      const batch = this.pending.slice(0, maxBatch);
      const firstEventSeq = this.delivered + 1n;
      const response = await withRetries(this.retry.attempts, this.retry.backoff, undefined, () =>
        this.orchestrator.reportNodeEvents({ ...this.node, events: batch, reporterId: this.reporterId, firstEventSeq }),
      );
      this.delivered += BigInt(batch.length);
      this.pending = this.pending.slice(batch.length);
      if (response.cancelled) this.cancellation.abort(new Error("the run was cancelled"));
    }
  }
}
