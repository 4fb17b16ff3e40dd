import type { MessageInitShape } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError } from "@connectrpc/connect";
import { BackpressurePolicy, PinType, type StreamRef } from "../../gen/mentatlab/v1/common_pb.js";
import type { Pin } from "../../gen/mentatlab/v1/registry_pb.js";
import type { StreamConsumerSchema, StreamService } from "../../gen/mentatlab/v1/stream_pb.js";
import type { FlowPlan } from "./flow-validate.js";

export interface OpenStreamRequest {
  readonly runId: string;
  readonly nodeId: string;
  readonly pin: Pin;
  /** Downstream nodes whose stream edges declare a backpressure policy. */
  readonly consumers: readonly MessageInitShape<typeof StreamConsumerSchema>[];
}

/** Creates the live stream of a `stream` output pin before its node starts, so consumers can start at once. */
export interface StreamOpener {
  open(request: OpenStreamRequest, runToken: string): Promise<StreamRef>;
  /**
   * Ends a stream its node's attempt left open, so its followers are not left waiting: with
   * stream_end after a success, with stream_error saying why otherwise. A stream the agent ended
   * itself is left as it is.
   */
  endLeftOpen(ref: StreamRef, runToken: string, errorMessage: string): Promise<void>;
}

/**
 * The payload kind of a stream pin, from the first MIME type it declares (a stream pin's `media`
 * names what it carries): audio/*, video/*, text/*, application/json, otherwise binary.
 */
export function streamPayloadOf(pin: Pin): { payloadType: PinType; mimeType: string } {
  const mimeType = pin.media?.acceptedMimeTypes[0] ?? "application/octet-stream";
  const payloadType = mimeType.startsWith("audio/")
    ? PinType.AUDIO
    : mimeType.startsWith("video/")
      ? PinType.VIDEO
      : mimeType.startsWith("text/")
        ? PinType.TEXT
        : mimeType === "application/json"
          ? PinType.JSON
          : PinType.BINARY;
  return { payloadType, mimeType: mimeType.includes("*") ? "" : mimeType };
}

/**
 * The downstream nodes of output `pin` of `nodeId` whose edges declare a backpressure policy (the
 * edge's, else the pin's), each once, for InitStream's `consumers`.
 */
export function streamConsumers(plan: FlowPlan, nodeId: string, pin: string): MessageInitShape<typeof StreamConsumerSchema>[] {
  const consumers = new Map<string, MessageInitShape<typeof StreamConsumerSchema>>();
  for (const [consumer, planned] of plan.nodes) {
    for (const source of planned.inputs.values()) {
      if (source.kind !== "edge") continue;
      for (const edge of source.edges) {
        if (edge.node !== nodeId || edge.pin !== pin || consumers.has(consumer)) continue;
        const policy = edge.backpressure?.policy ?? BackpressurePolicy.UNSPECIFIED;
        if (policy !== BackpressurePolicy.UNSPECIFIED) consumers.set(consumer, { nodeId: consumer, policy, windowBytes: edge.backpressure?.windowBytes ?? 0n });
      }
    }
  }
  return [...consumers.values()];
}

/** StreamOpener over the StreamService, acting with the node's run token (so the stream lands in the run's workspace). */
export function streamServiceOpener(streams: Client<typeof StreamService>): StreamOpener {
  return {
    async open({ runId, nodeId, pin, consumers }, runToken) {
      const response = await streams.initStream(
        { ...streamPayloadOf(pin), runId, nodeId, pin: pin.name, consumers: [...consumers] },
        { headers: { authorization: `Bearer ${runToken}` } },
      );
      const ref = response.stream?.ref;
      if (!ref) throw new Error(`stream service answered InitStream for ${nodeId}.${pin.name} without a StreamRef`);
      return ref;
    },
    async endLeftOpen(ref, runToken, errorMessage) {
      try {
        await streams.closeStream({ streamId: ref.streamId, errorMessage }, { headers: { authorization: `Bearer ${runToken}` } });
      } catch (err) {
        // Ended by its agent already (or gone with its retention): nothing is left open.
        const code = ConnectError.from(err).code;
        if (code !== Code.FailedPrecondition && code !== Code.NotFound) throw err;
      }
    },
  };
}
