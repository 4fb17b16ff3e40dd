export { loadSidecarConfig, type SidecarConfig, type Env } from "./config.js";
export { runAgentWithSidecar, startSidecar, plainSpec, type AgentOutcome, type RunningSidecar, type SidecarOptions } from "./sidecar.js";
export { StreamRelay, type StreamRelayOptions } from "./stream-relay.js";
export { SpillQueue } from "./spill-queue.js";
export { downloadToFile } from "./download.js";
export { uploadFile, sha256OfFile } from "./upload.js";
export { runPlainAgent, transientExitCode, type PlainAgentExit } from "./plain-agent.js";
export { sidecarEnv, type SidecarTask } from "./task-env.js";
export { parsePlainInvocation, plainResult, withPlainInvocation, type PlainInvocation } from "./plain-invocation.js";
