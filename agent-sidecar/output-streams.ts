import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { AgentEventSchema, PinType, PinValueSchema, type StreamRef } from "../gen/mentatlab/v1/common_pb.js";
import type { GatewayClients } from "./gateway-clients.js";
import type { NodeEventReporter, NodeIdentity } from "./event-reporter.js";
import type { OutputPublisher } from "./output-publisher.js";
import { StreamRelay, type StreamRelayOptions } from "./stream-relay.js";

export interface OpenedStream {
  readonly ref: StreamRef;
  readonly recommendedChunkBytes: number;
}

export type OutputStreamsOptions = Omit<StreamRelayOptions, "spillPath"> & {
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
 */
export class OutputStreams {
  private readonly relays = new Map<string, StreamRelay>();

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
    const relay = new StreamRelay(this.stream, ref.streamId, {
      ...this.options,
      spillPath: join(this.options.spillDir, `${ref.streamId}.spill`),
    });
    this.relays.set(ref.streamId, relay);
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

  async write(streamId: string, data: Uint8Array): Promise<void> {
    await this.relay(streamId).write(data);
  }

  /** Ends a stream once everything written was acknowledged; resolves with the payloads relayed. */
  async close(streamId: string, errorMessage = ""): Promise<bigint> {
    const relay = this.relay(streamId);
    this.relays.delete(streamId);
    const relayed = await relay.finish(errorMessage);
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
