import { type Client, Code, ConnectError } from "@connectrpc/connect";
import { PinType, type StreamRef } from "../../gen/mentatlab/v1/common_pb.js";
import type { Pin } from "../../gen/mentatlab/v1/registry_pb.js";
import type { StreamService } from "../../gen/mentatlab/v1/stream_pb.js";

export interface OpenStreamRequest {
  readonly runId: string;
  readonly nodeId: string;
  readonly pin: Pin;
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

/** StreamOpener over the StreamService, acting with the node's run token (so the stream lands in the run's workspace). */
export function streamServiceOpener(streams: Client<typeof StreamService>): StreamOpener {
  return {
    async open({ runId, nodeId, pin }, runToken) {
      const response = await streams.initStream(
        { ...streamPayloadOf(pin), runId, nodeId, pin: pin.name },
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
