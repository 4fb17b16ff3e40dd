export { Agent, type MediaInput, type PlainInputs, type StreamOutputOptions } from "./agent.js";
export { bytes, BytesOutput, file, FileOutput, type OutputValue } from "./outputs.js";
export { createSidecarTransport, sidecarAddressFromEnv, type SidecarAddress } from "./sidecar-transport.js";
export { LogLevel, PinType } from "../gen/mentatlab/v1/common_pb.js";
export type { AdaptOutputBitrate } from "../gen/mentatlab/v1/sidecar_pb.js";
export { rechunk } from "./chunks.js";
