import type { StreamEvent } from "../../gen/mentatlab/v1/stream_pb.js";
import type { StreamKey, StreamStore } from "./stream-store.js";

/**
 * Tells the store where one subscription of a declared consumer (a downstream agent of a `block` or
 * `fail` edge) stands: attached, each event handed to its connection, detached. Writes go in order, one
 * at a time; progress that arrives while one is in flight is merged into the next, so a fast reader
 * costs one store write per round trip rather than one per event.
 */
export class ConsumerProgress {
  private chain: Promise<void> = Promise.resolve();
  private next: { seq: bigint; bytes: bigint } | undefined;

  constructor(
    private readonly store: StreamStore,
    private readonly key: StreamKey,
    private readonly nodeId: string,
  ) {
    this.then(() => store.consumerAttached(key, nodeId, true, Date.now()));
  }

  delivered(event: StreamEvent): void {
    if (event.event.case !== "data") return;
    const reached = { seq: event.seq, bytes: event.event.value.offset + BigInt(event.event.value.data.byteLength) };
    const queued = this.next !== undefined;
    this.next = reached;
    if (queued) return;
    this.then(() => {
      const position = this.next ?? reached;
      this.next = undefined;
      return this.store.consumerAdvanced(this.key, this.nodeId, position.seq, position.bytes);
    });
  }

  detached(): void {
    this.then(() => this.store.consumerAttached(this.key, this.nodeId, false, Date.now()));
  }

  private then(write: () => Promise<void>): void {
    this.chain = this.chain.then(write).catch((err: unknown) => {
      // The store is down: the subscription itself fails from there; the producer's hold is only less current.
      console.error(`could not record the progress of consumer "${this.nodeId}" of stream "${this.key.id}":`, err instanceof Error ? err.message : err);
    });
  }
}
