import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { AgentEventSchema, LogLevel, PinType, PinValueSchema, type StreamRef } from "../gen/mentatlab/v1/common_pb.js";
import { AdaptOutputBitrateSchema, type AdaptOutputBitrate } from "../gen/mentatlab/v1/sidecar_pb.js";
import type { AdaptBitrate } from "../gen/mentatlab/v1/stream_pb.js";
import type { GatewayClients } from "./gateway-clients.js";
import type { NodeEventReporter, NodeIdentity } from "./event-reporter.js";
import type { OutputPublisher } from "./output-publisher.js";
import { StreamAdvice } from "./stream-advice.js";
import { StreamRelay, type StreamRelayOptions } from "./stream-relay.js";

export interface OpenedStream {
  readonly ref: StreamRef;
  readonly recommendedChunkBytes: number;
}

export type OutputStreamsOptions = Omit<StreamRelayOptions, "spillPath" | "onAdaptBitrate"> & {
  /** Directory for the relays' spill files. */
  readonly spillDir: string;
  /** Streams the orchestrator created up front for `stream` pins; opening such a pin publishes to it. */
  readonly precreated: ReadonlyMap<string, StreamRef>;
  /** Chunk size suggested for pre-created streams, by payload type. */
  readonly chunkBytesFor: (payloadType: PinType) => number;
};

/**
 * The node's open output streams: creates each on the stream service, announces its StreamRef as the
 * pin's output right away (so consumers can follow it while it is produced) and relays its payloads.
 * The stream service's advice to a slow producer reaches the agent (`watch`) and the run's log.
 */
export class OutputStreams {
  private readonly relays = new Map<string, StreamRelay>();
  /** Kept after a stream closes, so a watcher arriving late still gets the last advice and its end. */
  private readonly advice = new Map<string, StreamAdvice>();

  constructor(
    private readonly stream: GatewayClients["stream"],
    private readonly outputs: OutputPublisher,
    private readonly reporter: NodeEventReporter,
    private readonly node: NodeIdentity,
    private readonly options: OutputStreamsOptions,
  ) {}

  async open(pin: string, mimeType: string, payloadType: PinType): Promise<OpenedStream> {
    this.outputs.check(pin, "stream");
    const { ref, recommendedChunkBytes } = await this.create(pin, mimeType, payloadType);
    if (this.relays.has(ref.streamId)) {
      throw new ConnectError(`output stream of pin ${pin} is already open`, Code.FailedPrecondition);
    }
    const advice = new StreamAdvice();
    const relay = new StreamRelay(this.stream, ref.streamId, {
      ...this.options,
      spillPath: join(this.options.spillDir, `${ref.streamId}.spill`),
      onAdaptBitrate: (received) => this.advise(pin, ref.streamId, advice, received),
    });
    this.relays.set(ref.streamId, relay);
    this.advice.set(ref.streamId, advice);
    await this.outputs.publish(pin, create(PinValueSchema, { value: { case: "stream", value: ref } }));
    return { ref, recommendedChunkBytes };
  }

  private async create(pin: string, mimeType: string, payloadType: PinType): Promise<OpenedStream> {
    const precreated = this.options.precreated.get(pin);
    if (precreated) {
      return { ref: precreated, recommendedChunkBytes: this.options.chunkBytesFor(precreated.payloadType) };
    }
    const response = await this.stream.initStream({
      payloadType: payloadType === PinType.UNSPECIFIED ? PinType.BINARY : payloadType,
      mimeType,
      runId: this.node.runId,
      nodeId: this.node.nodeId,
      pin,
    });
    const ref = response.stream?.ref;
    if (!ref) throw new ConnectError("stream service returned no stream ref", Code.Internal);
    return { ref, recommendedChunkBytes: response.recommendedChunkBytes };
  }

  /** The advice about a stream opened by this node: the latest first, then newer ones until it closes. */
  watch(streamId: string, signal: AbortSignal): AsyncGenerator<AdaptOutputBitrate> {
    const advice = this.advice.get(streamId);
    if (!advice) {
      throw new ConnectError(`no output stream ${streamId} was opened by this node; call OpenOutputStream first`, Code.NotFound);
    }
    return advice.watch(signal);
  }

  /** Passes advice on to the agent and logs it as a warning, so whoever watches the run sees it too. */
  private advise(pin: string, streamId: string, advice: StreamAdvice, received: AdaptBitrate): void {
    const { measuredBitsPerSecond, suggestedBitsPerSecond, reason } = received;
    advice.publish(create(AdaptOutputBitrateSchema, { measuredBitsPerSecond, suggestedBitsPerSecond, reason }));
    this.reporter.enqueue(
      create(AgentEventSchema, {
        time: timestampNow(),
        event: {
          case: "log",
          value: {
            level: LogLevel.WARN,
            message: `output stream of pin ${pin} is too slow: ${reason}`,
            data: {
              stream_id: streamId,
              pin,
              measured_bits_per_second: Number(measuredBitsPerSecond),
              suggested_bits_per_second: Number(suggestedBitsPerSecond),
            },
          },
        },
      }),
    );
    // Delivery errors surface at the node's final flush; the relay must not wait on the orchestrator.
    this.reporter.flush().catch(() => undefined);
  }

  async write(streamId: string, data: Uint8Array): Promise<void> {
    await this.relay(streamId).write(data);
  }

  /** Ends a stream once everything written was acknowledged; resolves with the payloads relayed. */
  async close(streamId: string, errorMessage = ""): Promise<bigint> {
    const relay = this.relay(streamId);
    this.relays.delete(streamId);
    let relayed: bigint;
    try {
      relayed = await relay.finish(errorMessage);
    } finally {
      this.advice.get(streamId)?.end();
    }
    // How often the network broke under this stream: the evidence that resuming worked when it did.
    this.reporter.enqueue(
      create(AgentEventSchema, {
        time: timestampNow(),
        event: { case: "metric", value: { name: "stream_relay_reconnects", value: relay.reconnectCount, labels: { stream_id: streamId } } },
      }),
    );
    return relayed;
  }

  /** Ends every stream the agent left open (with an error when the agent failed). */
  async closeAll(errorMessage = ""): Promise<void> {
    await Promise.all([...this.relays.keys()].map((id) => this.close(id, errorMessage)));
  }

  private relay(streamId: string): StreamRelay {
    const relay = this.relays.get(streamId);
    if (!relay) {
      throw new ConnectError(`no open output stream ${streamId}; call OpenOutputStream first`, Code.NotFound);
    }
    return relay;
  }
}
