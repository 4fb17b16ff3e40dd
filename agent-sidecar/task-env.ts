import { toJson, type JsonObject } from "@bufbuild/protobuf";
import { PinValueSchema, StreamRefSchema, type PinType, type PinValue, type StreamRef } from "../gen/mentatlab/v1/common_pb.js";
import type { NodeAttempt } from "./node-attempt.js";
import { pinTypeName } from "./pin-type-names.js";

/** What an executor knows about one node attempt, as the sidecar needs it. */
export interface SidecarTask extends NodeAttempt {
  readonly inputs: Readonly<Record<string, PinValue>>;
  readonly params: JsonObject;
  /** Output pin types by pin name, from the agent's manifest. */
  readonly outputPins: Readonly<Record<string, PinType>>;
  /** Streams the orchestrator created for the node's `stream` output pins. */
  readonly outputStreams: Readonly<Record<string, StreamRef>>;
  /** Unix socket path or `127.0.0.1:<port>`; defaults to a socket in the shared dir. */
  readonly listen?: string;
}

/**
 * The environment that configures a sidecar for one node attempt: for an executor that starts
 * `agent-sidecar -- <command>` as a process or a container, or feeds `loadSidecarConfig` in process.
 */
export function sidecarEnv(task: SidecarTask): Record<string, string> {
  const map = <T>(record: Readonly<Record<string, T>>, convert: (value: T) => unknown) =>
    JSON.stringify(Object.fromEntries(Object.entries(record).map(([pin, value]) => [pin, convert(value)])));
  return {
    MENTATLAB_RUN_ID: task.runId,
    MENTATLAB_NODE_ID: task.nodeId,
    MENTATLAB_ATTEMPT: String(task.attempt),
    MENTATLAB_WORKSPACE: task.workspace,
    MENTATLAB_AGENT_ID: task.agentId,
    MENTATLAB_AGENT_VERSION: task.agentVersion,
    MENTATLAB_GATEWAY_URL: task.gatewayUrl,
    MENTATLAB_RUN_TOKEN: task.runToken,
    MENTATLAB_SHARED_DIR: task.sharedDir,
    MENTATLAB_INPUTS_JSON: map(task.inputs, (value) => toJson(PinValueSchema, value)),
    MENTATLAB_PARAMS_JSON: JSON.stringify(task.params),
    MENTATLAB_OUTPUT_PINS_JSON: map(task.outputPins, (type) => pinTypeName(type) ?? "binary"),
    MENTATLAB_OUTPUT_STREAMS_JSON: map(task.outputStreams, (ref) => toJson(StreamRefSchema, ref)),
    ...(task.listen ? { MENTATLAB_SIDECAR_LISTEN: task.listen } : {}),
  };
}
