export { loadSidecarConfig, type Env, type SidecarConfig } from "./config.js";
export {
  runAgentWithSidecar,
  runBridgedAgentWithSidecar,
  startSidecar,
  plainSpec,
  type AgentOutcome,
  type RunningSidecar,
  type SidecarOptions,
} from "./sidecar.js";
export { sidecarEnv, type SidecarTask } from "../agent-contract/sidecar-env.js";
export { parsePlainInvocation, plainResult, withPlainInvocation, type PlainInvocation } from "./plain-invocation.js";
export { StreamRelay, type StreamRelayOptions } from "./stream-relay.js";
export { followStream, type FollowOptions } from "./stream-follow.js";
export { SpillQueue, type SpillQueueOptions } from "./spill-queue.js";
export { downloadToFile, type DownloadOptions } from "./download.js";
export { uploadFile, sha256OfFile, type UploadFileOptions } from "./upload.js";
export { runPlainAgent, type PlainAgentExit, type PlainAgentOptions } from "./plain-agent.js";
export { runBridgedAgent, markBridgeDelivered, bridgeFiles, type BridgedAgentOptions } from "./plain-bridge.js";
export { PlainStdoutReader, LineTail, type PlainStdoutHandlers, type PlainStdoutSummary } from "./plain-stdout.js";
