import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fromJson, type DescMessage, type JsonValue, type MessageShape } from "@bufbuild/protobuf";
import { PinType, PinValueSchema, StreamRefSchema, type PinValue, type StreamRef } from "../gen/mentatlab/v1/common_pb.js";
import type { NodeAttempt } from "./node-attempt.js";
import { pinTypesByName } from "./pin-type-names.js";

/** Everything the sidecar needs to know about the node it serves, read from the environment. */
export interface SidecarConfig extends NodeAttempt {
  /** Unix socket path, or `127.0.0.1:<port>` (port 0 picks one). */
  readonly listen: string;
  /** Token the agent must present to the SidecarService. */
  readonly sidecarToken: string;
  /** Resolved input values by pin name. */
  readonly inputs: ReadonlyMap<string, PinValue>;
  /** The node's parameters from the flow. */
  readonly params: Record<string, JsonValue>;
  /** Declared output pin types by pin name; empty when the orchestrator did not say. */
  readonly outputPins: ReadonlyMap<string, PinType>;
  /** Streams the orchestrator already created for the node's `stream` output pins, by pin name. */
  readonly outputStreams: ReadonlyMap<string, StreamRef>;
  /** Attempts per download before giving up (each resumes at the last verified offset). */
  readonly downloadAttempts: number;
  /** Attempts per upload before giving up. */
  readonly uploadAttempts: number;
  /** Stream relay: bytes kept in memory before spilling to disk. */
  readonly streamMemoryBytes: number;
  /** Stream relay: bytes buffered (memory + disk) before the agent's writes wait. */
  readonly streamBufferBytes: number;
  /** Longest delay between reconnect attempts to the gateway, in milliseconds. */
  readonly reconnectMaxDelayMs: number;
  /** How long to keep trying to reach the gateway before failing, in milliseconds. */
  readonly reconnectGiveUpMs: number;
  /** Bytes up to which a binary output is carried inline instead of stored. */
  readonly inlineMaxBytes: number;
  /** Stderr lines of a crashed agent kept for the failure report. */
  readonly stderrTailLines: number;
  /** Bridge directory of a plain agent in another container (see plain-bridge.ts); empty when not bridging. */
  readonly plainBridge: string;
}

export type Env = Readonly<Record<string, string | undefined>>;

/** Reads the sidecar's configuration; throws an error naming the variable to fix. */
export function loadSidecarConfig(env: Env): SidecarConfig {
  const runId = required(env, "MENTATLAB_RUN_ID");
  const nodeId = required(env, "MENTATLAB_NODE_ID");
  const attempt = integer(env, "MENTATLAB_ATTEMPT", 1, 1);
  const sharedDir = env.MENTATLAB_SHARED_DIR || join(tmpdir(), `mentatlab-${runId}-${nodeId}-${attempt}`);
  return {
    runId,
    nodeId,
    attempt,
    workspace: env.MENTATLAB_WORKSPACE ?? "",
    agentId: env.MENTATLAB_AGENT_ID ?? "",
    agentVersion: env.MENTATLAB_AGENT_VERSION ?? "",
    gatewayUrl: (env.MENTATLAB_GATEWAY_URL || "http://127.0.0.1:8080").replace(/\/+$/, ""),
    runToken: required(env, "MENTATLAB_RUN_TOKEN"),
    sharedDir,
    listen: env.MENTATLAB_SIDECAR_LISTEN || join(sharedDir, "sidecar.sock"),
    sidecarToken: env.MENTATLAB_SIDECAR_TOKEN || randomBytes(24).toString("base64url"),
    inputs: env.MENTATLAB_INPUTS_FILE
      ? parseMessagesByPin(readInputsFile(env.MENTATLAB_INPUTS_FILE), "MENTATLAB_INPUTS_FILE", PinValueSchema)
      : parseMessagesByPin(env.MENTATLAB_INPUTS_JSON, "MENTATLAB_INPUTS_JSON", PinValueSchema),
    params: parseParams(env.MENTATLAB_PARAMS_JSON),
    outputPins: parseOutputPins(env.MENTATLAB_OUTPUT_PINS_JSON),
    outputStreams: parseMessagesByPin(env.MENTATLAB_OUTPUT_STREAMS_JSON, "MENTATLAB_OUTPUT_STREAMS_JSON", StreamRefSchema),
    downloadAttempts: integer(env, "MENTATLAB_DOWNLOAD_ATTEMPTS", 5, 1),
    uploadAttempts: integer(env, "MENTATLAB_UPLOAD_ATTEMPTS", 3, 1),
    streamMemoryBytes: integer(env, "MENTATLAB_STREAM_MEMORY_BYTES", 4 * 1024 * 1024, 0),
    streamBufferBytes: integer(env, "MENTATLAB_STREAM_BUFFER_BYTES", 1024 * 1024 * 1024, 1),
    reconnectMaxDelayMs: integer(env, "MENTATLAB_RECONNECT_MAX_DELAY_MS", 2000, 1),
    reconnectGiveUpMs: integer(env, "MENTATLAB_RECONNECT_GIVE_UP_MS", 5 * 60 * 1000, 1),
    inlineMaxBytes: integer(env, "MENTATLAB_INLINE_MAX_BYTES", 64 * 1024, 0),
    stderrTailLines: integer(env, "MENTATLAB_STDERR_TAIL_LINES", 20, 1),
    plainBridge: env.MENTATLAB_PLAIN_BRIDGE ?? "",
  };
}

/** Inputs as a file (a mounted Secret): inline values may be larger than one environment string can be. */
function readInputsFile(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`MENTATLAB_INPUTS_FILE: cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function required(env: Env, name: string): string {
  const value = env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
}

function integer(env: Env, name: string, fallback: number, min: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be an integer >= ${min}, got "${raw}"`);
  return value;
}

function parseJsonObject(raw: string | undefined, name: string): Record<string, JsonValue> {
  if (raw === undefined || raw === "") return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (error) {
    throw new Error(`${name} is not valid JSON: ${(error as Error).message}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new Error(`${name} must be a JSON object`);
  }
  return parsed as Record<string, JsonValue>;
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

function parseParams(raw: string | undefined): Record<string, JsonValue> {
  return parseJsonObject(raw, "MENTATLAB_PARAMS_JSON");
}

function parseOutputPins(raw: string | undefined): Map<string, PinType> {
  const pins = new Map<string, PinType>();
  for (const [pin, type] of Object.entries(parseJsonObject(raw, "MENTATLAB_OUTPUT_PINS_JSON"))) {
    const parsed = typeof type === "string" ? pinTypesByName[type.toLowerCase()] : undefined;
    if (parsed === undefined) {
      throw new Error(
        `MENTATLAB_OUTPUT_PINS_JSON.${pin} must be one of ${Object.keys(pinTypesByName).join(", ")}, got ${JSON.stringify(type)}`,
      );
    }
    pins.set(pin, parsed);
  }
  return pins;
}

/** Whether a pin type is always stored and passed as a MediaRef. */
export function isMediaPin(type: PinType | undefined): boolean {
  return type === PinType.IMAGE || type === PinType.AUDIO || type === PinType.VIDEO;
}
