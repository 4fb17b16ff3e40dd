import { PinType } from "../../gen/mentatlab/v1/common_pb.js";

const KIB = 1024;

/**
 * Chunk size a producer should use: small for text so tokens reach readers promptly, 8 KiB for audio
 * (tens of milliseconds of compressed audio), 64 KiB for video (one HTTP/2 default window's worth).
 */
export function recommendedChunkBytes(payloadType: PinType): number {
  switch (payloadType) {
    case PinType.TEXT:
    case PinType.JSON:
      return 1 * KIB;
    case PinType.AUDIO:
      return 8 * KIB;
    case PinType.VIDEO:
    case PinType.BINARY:
      return 64 * KIB;
    default:
      return 1 * KIB;
  }
}

/** Payload types carried as UTF-8 text: delivered as text over SSE, eligible for gzip. */
export function isTextual(payloadType: PinType): boolean {
  return payloadType === PinType.TEXT || payloadType === PinType.JSON;
}

/** Payload types with a bitrate a producer can lower. */
export function hasAdaptableBitrate(payloadType: PinType): boolean {
  return payloadType === PinType.AUDIO || payloadType === PinType.VIDEO;
}
