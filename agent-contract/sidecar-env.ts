import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fromJson, toJson, type DescMessage, type JsonObject, type JsonValue, type MessageShape } from "@bufbuild/protobuf";
import { PinValueSchema, StreamRefSchema, type PinType, type PinValue, type StreamRef } from "../gen/mentatlab/v1/common_pb.js";
import { isRecord } from "./json-record.js";
import { pinTypeName, pinTypeNames } from "./pins.js";

/**
 * The node attempt a sidecar serves and how it reaches the mesh: what an executor writes into the
 * sidecar's environment (`sidecarEnv`) and the sidecar reads back (`readSidecarEnv`).
 */
export interface NodeAttempt {
  readonly runId: string;
  readonly nodeId: string;
  readonly attempt: number;
  /** Workspace of the run, for the plain contract's context. */
  readonly workspace: string;
  /** Agent id and version, for the plain contract's spec. */
  readonly agentId: string;
  readonly agentVersion: string;
  /** Base URL of the gateway; every service is reached through it. */
  readonly gatewayUrl: string;
  /** Run token sent as `Authorization: Bearer` to the gateway. */
  readonly runToken: string;
  /** Shared volume: inputs are downloaded here and agents write outputs here. */
  readonly sharedDir: string;
}

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

// The same type as services/shared/env.ts's Env, declared again because the contract imports nothing
// but gen/ (the eslint.config.js zones); the two are structurally identical, so either is accepted.
export type Env = Readonly<Record<string, string | undefined>>;

/**
 * The environment that configures a sidecar for one node attempt: for an executor that starts
 * `agent-sidecar -- <command>` as a process or a container, or feeds the sidecar's config in process.
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
    MENTATLAB_OUTPUT_PINS_JSON: map(task.outputPins, outputPinName),
    MENTATLAB_OUTPUT_STREAMS_JSON: map(task.outputStreams, (ref) => toJson(StreamRefSchema, ref)),
    ...(task.listen ? { MENTATLAB_SIDECAR_LISTEN: task.listen } : {}),
  };
}

/** An output pin of no known type (unspecified in the manifest) is handled like binary: stored or inlined by size. */
function outputPinName(type: PinType): string {
  const name = pinTypeName(type);
  return pinTypeNames.has(name) ? name : "binary";
}

/** The node attempt as the sidecar reads it back from `sidecarEnv`'s variables, with their defaults. */
export interface SidecarEnvTask extends NodeAttempt {
  /** Unix socket path, or `127.0.0.1:<port>` (port 0 picks one). */
  readonly listen: string;
  /** Resolved input values by pin name. */
  readonly inputs: ReadonlyMap<string, PinValue>;
  /** The node's parameters from the flow. */
  readonly params: Record<string, JsonValue>;
  /** Declared output pin types by pin name; empty when the orchestrator did not say. */
  readonly outputPins: ReadonlyMap<string, PinType>;
  /** Streams the orchestrator already created for the node's `stream` output pins, by pin name. */
  readonly outputStreams: ReadonlyMap<string, StreamRef>;
}

/** Reads what `sidecarEnv` wrote; throws an error naming the variable to fix. */
export function readSidecarEnv(env: Env): SidecarEnvTask {
  const runId = required(env, "MENTATLAB_RUN_ID");
  const nodeId = required(env, "MENTATLAB_NODE_ID");
  const attempt = attemptOf(env.MENTATLAB_ATTEMPT);
  const sharedDir = env.MENTATLAB_SHARED_DIR || join(tmpdir(), `mentatlab-${runId}-${nodeId}-${attempt}`);
  return {
    runId,
    nodeId,
    attempt,
    workspace: env.MENTATLAB_WORKSPACE ?? "",
    agentId: env.MENTATLAB_AGENT_ID ?? "",
    agentVersion: env.MENTATLAB_AGENT_VERSION ?? "",
    gatewayUrl: gatewayUrlOf(env),
    runToken: required(env, "MENTATLAB_RUN_TOKEN"),
    sharedDir,
    listen: env.MENTATLAB_SIDECAR_LISTEN || join(sharedDir, "sidecar.sock"),
    inputs: env.MENTATLAB_INPUTS_FILE
      ? parseMessagesByPin(readInputsFile(env.MENTATLAB_INPUTS_FILE), "MENTATLAB_INPUTS_FILE", PinValueSchema)
      : parseMessagesByPin(env.MENTATLAB_INPUTS_JSON, "MENTATLAB_INPUTS_JSON", PinValueSchema),
    params: parseJsonObject(env.MENTATLAB_PARAMS_JSON, "MENTATLAB_PARAMS_JSON"),
    outputPins: parseOutputPins(env.MENTATLAB_OUTPUT_PINS_JSON),
    outputStreams: parseMessagesByPin(env.MENTATLAB_OUTPUT_STREAMS_JSON, "MENTATLAB_OUTPUT_STREAMS_JSON", StreamRefSchema),
  };
}

/** MENTATLAB_GATEWAY_URL without a trailing slash, defaulting to the embedded mesh's port. */
export function gatewayUrlOf(env: Env): string {
  return (env.MENTATLAB_GATEWAY_URL || "http://127.0.0.1:8080").replace(/\/+$/, "");
}

function required(env: Env, name: string): string {
  const value = env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
}

function attemptOf(raw: string | undefined): number {
  if (raw === undefined || raw === "") return 1;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`MENTATLAB_ATTEMPT must be an integer >= 1, got "${raw}"`);
  return value;
}

function parseJsonObject(raw: string | undefined, name: string): Record<string, JsonValue> {
  if (raw === undefined || raw === "") return {};
  let parsed: JsonValue;
  try {
    parsed = JSON.parse(raw) as JsonValue;
  } catch (error) {
    throw new Error(`${name} is not valid JSON: ${(error as Error).message}`);
  }
  if (!isRecord(parsed)) throw new Error(`${name} must be a JSON object`);
  return parsed;
}

/** Inputs as a file (a mounted Secret): inline values may be larger than one environment string can be. */
function readInputsFile(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`MENTATLAB_INPUTS_FILE: cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** A JSON object of proto-JSON messages by pin name, e.g. MENTATLAB_INPUTS_JSON. */
function parseMessagesByPin<Desc extends DescMessage>(raw: string | undefined, name: string, schema: Desc): Map<string, MessageShape<Desc>> {
  const messages = new Map<string, MessageShape<Desc>>();
  for (const [pin, json] of Object.entries(parseJsonObject(raw, name))) {
    try {
      messages.set(pin, fromJson(schema, json));
    } catch (error) {
      throw new Error(`${name}.${pin} is not a ${schema.name} in proto JSON: ${(error as Error).message}`);
    }
  }
  return messages;
}

function parseOutputPins(raw: string | undefined): Map<string, PinType> {
  const pins = new Map<string, PinType>();
  for (const [pin, type] of Object.entries(parseJsonObject(raw, "MENTATLAB_OUTPUT_PINS_JSON"))) {
    const parsed = typeof type === "string" ? pinTypeNames.get(type.toLowerCase()) : undefined;
    if (parsed === undefined) {
      throw new Error(`MENTATLAB_OUTPUT_PINS_JSON.${pin} must be one of ${[...pinTypeNames.keys()].join(", ")}, got ${JSON.stringify(type)}`);
    }
    pins.set(pin, parsed);
  }
  return pins;
}
