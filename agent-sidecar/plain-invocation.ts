import { fromJson, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { StreamRefSchema, type PinValue, type StreamRef } from "../gen/mentatlab/v1/common_pb.js";
import { isRecord } from "../agent-contract/json-record.js";
import { pinValueFromPlain, plainValue } from "../agent-contract/plain-contract.js";
import type { SidecarConfig } from "./config.js";

/**
 * What a plain-contract executor handed the sidecar on stdin (`{"spec", "context"}`, see
 * agent-contract/plain-contract.ts) when the sidecar itself is the command it runs:
 * `agent-sidecar -- <agent>` then works under any executor that speaks the original contract.
 */
export interface PlainInvocation {
  readonly inputs: ReadonlyMap<string, PinValue>;
  readonly params: JsonObject;
  readonly outputStreams: ReadonlyMap<string, StreamRef>;
  readonly workspace: string;
  readonly agentId: string;
  readonly agentVersion: string;
}

/** Reads the plain contract's stdin document; throws a message saying what is malformed. */
export function parsePlainInvocation(text: string): PlainInvocation {
  let document: JsonValue;
  try {
    document = JSON.parse(text) as JsonValue;
  } catch (error) {
    throw new Error(`stdin is not the plain contract's {"spec", "context"} JSON: ${(error as Error).message}`);
  }
  const root = record(document);
  const spec = record(root.spec);
  const context = record(root.context);
  const inputs = new Map<string, PinValue>();
  for (const [pin, value] of Object.entries(record(context.inputs))) inputs.set(pin, pinValueFromPlain(value));
  const outputStreams = new Map<string, StreamRef>();
  for (const [pin, value] of Object.entries(record(context.output_streams))) {
    outputStreams.set(pin, fromJson(StreamRefSchema, value, { ignoreUnknownFields: true }));
  }
  return {
    inputs,
    params: record(spec.params),
    outputStreams,
    workspace: typeof context.workspace === "string" ? context.workspace : "",
    agentId: typeof spec.agent_id === "string" ? spec.agent_id : "",
    agentVersion: typeof spec.agent_version === "string" ? spec.agent_version : "",
  };
}

/** The config with the invocation's inputs, params and streams (the environment's still win when set). */
export function withPlainInvocation(config: SidecarConfig, invocation: PlainInvocation): SidecarConfig {
  return {
    ...config,
    inputs: config.inputs.size > 0 ? config.inputs : invocation.inputs,
    params: Object.keys(config.params).length > 0 ? config.params : invocation.params,
    outputStreams: config.outputStreams.size > 0 ? config.outputStreams : invocation.outputStreams,
    workspace: config.workspace || invocation.workspace,
    agentId: config.agentId || invocation.agentId,
    agentVersion: config.agentVersion || invocation.agentVersion,
  };
}

/** The `{"result": …}` document that hands the agent's outputs back to a plain-contract executor. */
export function plainResult(outputs: Readonly<Record<string, PinValue>>): JsonObject {
  return { result: Object.fromEntries(Object.entries(outputs).map(([pin, value]) => [pin, plainValue(value)])) };
}

function record(value: JsonValue | undefined): JsonObject {
  return isRecord(value) ? value : {};
}
