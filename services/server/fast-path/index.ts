export { createFastPath, type FastPath, type FastPathOptions, type FastPathProcedures } from "./fast-path.js";
export type { EncodedRelay, EncodedServerStream, EncodedSink } from "./encoded-stream.js";
export { EnvelopeBoundaries, envelope, envelopeSegments } from "./framing.js";
export { chunksOf, EnvelopeAssembler, type ReceivedEnvelope, readBody, readEnvelopes } from "./request-body.js";
