import { setTimeout as sleep } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { PublishRequestSchema, type AdaptBitrate, type PublishRequest, type StreamService } from "../gen/mentatlab/v1/stream_pb.js";
import { backoffDelay, isTransient, withRetries, type Backoff } from "./retry.js";
import { SpillQueue, type SpillQueueOptions } from "./spill-queue.js";

export interface StreamRelayOptions extends SpillQueueOptions {
  readonly backoff: Backoff;
  /** Give up after the stream service has been unreachable this long, in milliseconds. */
  readonly giveUpMs: number;
  /** Called with the stream service's advice to a slow producer, as it arrives. */
  readonly onAdaptBitrate?: (advice: AdaptBitrate) => void;
}

/**
 * Relays one output stream to StreamService.Publish. Every payload gets a client_seq and stays buffered
 * (bounded, spilling to disk) until the service acknowledges it; when the call breaks (gateway restart,
 * network blip) the relay reconnects and re-sends everything after the last acknowledged client_seq.
 * The service drops client_seqs it already stored, so nothing is lost or duplicated.
 */
export class StreamRelay {
  private readonly queue: SpillQueue;
  private readonly pump: Promise<void>;
  private reconnects = 0;

  constructor(
    private readonly client: Client<typeof StreamService>,
    readonly streamId: string,
    private readonly options: StreamRelayOptions,
  ) {
    this.queue = new SpillQueue(options);
    this.pump = this.run();
    // Failures surface through write() and finish(); the pump's own rejection is observed there.
    this.pump.catch(() => undefined);
  }

  /** Times the relay had to reconnect, for tests and metrics. */
  get reconnectCount(): number {
    return this.reconnects;
  }

  /** Payloads acknowledged by the stream service. */
  get acknowledged(): bigint {
    return this.queue.ackedSeq;
  }

  /** Buffers a payload; waits while the buffer is full. */
  async write(data: Uint8Array): Promise<bigint> {
    return this.queue.push(data);
  }

  /**
   * Waits until every payload is acknowledged, then ends the stream (with stream_error when
   * `errorMessage` is set). Resolves with the number of payloads relayed.
   */
  async finish(errorMessage = ""): Promise<bigint> {
    this.queue.close();
    let failure: unknown;
    try {
      await this.pump;
    } catch (error) {
      failure = error;
    } finally {
      await this.queue.dispose();
    }
    // A relay that gave up still ends the stream, so subscribers are told instead of waiting forever.
    const reason = errorMessage || (failure === undefined ? "" : `output stream relay failed: ${messageOf(failure)}`);
    try {
      await withRetries(10, this.options.backoff, undefined, () => this.client.closeStream({ streamId: this.streamId, errorMessage: reason }));
    } catch (closeError) {
      // The relay's own failure is the cause worth reporting; a refused close usually follows from it.
      throw failure ?? closeError;
    }
    if (failure !== undefined) throw failure;
    return this.queue.ackedSeq;
  }

  private async run(): Promise<void> {
    let unreachableSince: number | undefined;
    let failures = 0;
    while (!(this.queue.isClosed && this.queue.ackedSeq === this.queue.lastSeq)) {
      const ackedBefore = this.queue.ackedSeq;
      try {
        await this.session();
        unreachableSince = undefined;
        failures = 0;
      } catch (error) {
        if (this.queue.ackedSeq > ackedBefore) {
          unreachableSince = undefined;
          failures = 0;
        }
        unreachableSince ??= Date.now();
        if (!isTransient(error) || Date.now() - unreachableSince > this.options.giveUpMs) {
          const reason = error instanceof Error ? error : new Error(String(error));
          this.queue.fail(reason);
          throw reason;
        }
        this.reconnects++;
        await sleep(backoffDelay(this.options.backoff, ++failures));
      }
    }
  }

  /** One Publish call: re-sends what is unacknowledged, then follows new payloads until closed. */
  private async session(): Promise<void> {
    const queue = this.queue;
    const streamId = this.streamId;
    const { onAdaptBitrate } = this.options;
    const stop = new AbortController();
    let sent = queue.ackedSeq;
    async function* requests(): AsyncGenerator<PublishRequest> {
      yield create(PublishRequestSchema, { part: { case: "open", value: { streamId } } });
      while (!stop.signal.aborted) {
        // A reconnect's first ack may cover payloads this call has not re-sent yet: skip them.
        if (sent < queue.ackedSeq) sent = queue.ackedSeq;
        if (sent < queue.lastSeq) {
          const seq = sent + 1n;
          const data = await queue.read(seq);
          sent = seq;
          yield create(PublishRequestSchema, { part: { case: "data", value: { data, clientSeq: seq } } });
        } else if (queue.isClosed) {
          return;
        } else {
          await queue.waitForMore(sent, stop.signal);
        }
      }
    }
    try {
      for await (const response of this.client.publish(requests(), { signal: stop.signal })) {
        if (response.event.case === "ack") queue.ack(response.event.value.lastClientSeq);
        else if (response.event.case === "adaptBitrate") onAdaptBitrate?.(response.event.value);
      }
    } finally {
      stop.abort();
    }
    if (queue.ackedSeq < sent) {
      throw new ConnectError(`publish of ${streamId} ended with client_seq ${queue.ackedSeq} acknowledged of ${sent} sent`, Code.Unavailable);
    }
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
