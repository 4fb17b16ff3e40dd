export { createFastPath, type FastPath, type FastPathOptions, type FastPathProcedures } from "./fast-path.js";
export type { EncodedServerStream, EncodedSink } from "./encoded-stream.js";
export { envelope } from "./framing.js";
