import { create, fromJson, type JsonObject, type JsonValue, toJson } from "@bufbuild/protobuf";
import { timestampFromDate, timestampNow, ValueSchema } from "@bufbuild/protobuf/wkt";
import {
  type AgentEvent,
  AgentEventSchema,
  CheckpointEventSchema,
  HeartbeatEventSchema,
  LogEventSchema,
  MetricEventSchema,
  ProgressEventSchema,
  LogLevel,
  MediaRefSchema,
  PinType,
  type PinValue,
  PinValueSchema,
  type StreamRef,
  StreamRefSchema,
} from "../gen/mentatlab/v1/common_pb.js";
import type { Pin } from "../gen/mentatlab/v1/registry_pb.js";
import { isRecord } from "./json-record.js";
import { jsonOf, jsonPinValue } from "./pin-values.js";
import { isMediaPin, pinTypeName } from "./pins.js";

/**
 * The original MentatLab agent contract, unchanged: `{"spec", "context"}` JSON on stdin (and in the
 * INPUT_SPEC / INPUT_CONTEXT environment variables), one JSON event per stdout line, a final
 * `{"result": {...}}` line whose keys are output pin names, exit code 3 for a transient failure.
 *
 * spec    = { agent_id, agent_version, params }
 * context = { run_id, node_id, attempt, workspace, inputs: {pin: value}, output_streams: {pin: StreamRef} }
 * Input values: text as a string, json as itself, inline binary as {"base64": "..."}, media and
 * offloaded binary as MediaRef JSON (a sidecar may add "path": a local copy), streams as StreamRef JSON.
 */
export interface PlainInput {
  readonly spec: JsonObject;
  readonly context: JsonObject;
}

/** Exit code of an agent whose failure is transient: the attempt is worth a retry. */
export const transientExitCode = 3;

/** The node attempt a plain-contract executor describes to the agent. */
export interface PlainTask {
  readonly runId: string;
  readonly nodeId: string;
  readonly attempt: number;
  readonly workspace: string;
  readonly agent: { readonly id: string; readonly version: string };
  readonly params: JsonObject;
  readonly inputs: Readonly<Record<string, PinValue>>;
  readonly outputStreams: Readonly<Record<string, StreamRef>>;
}

export function plainInput(task: PlainTask): PlainInput {
  return {
    spec: { agent_id: task.agent.id, agent_version: task.agent.version, params: task.params },
    context: {
      run_id: task.runId,
      node_id: task.nodeId,
      attempt: task.attempt,
      workspace: task.workspace,
      inputs: Object.fromEntries(Object.entries(task.inputs).map(([pin, value]) => [pin, plainValue(value)])),
      output_streams: Object.fromEntries(Object.entries(task.outputStreams).map(([pin, ref]) => [pin, toJson(StreamRefSchema, ref)])),
    },
  };
}

export function plainValue(value: PinValue): JsonValue {
  switch (value.value.case) {
    case "text":
      return value.value.value;
    case "json":
      return jsonOf(value.value.value);
    case "inlineBytes":
      return { base64: Buffer.from(value.value.value).toString("base64") };
    case "media":
      return toJson(MediaRefSchema, value.value.value);
    case "stream":
      return toJson(StreamRefSchema, value.value.value);
    default:
      return null;
  }
}

/**
 * The inverse of `plainValue`: text as a string, `{"base64"}` as bytes, MediaRef JSON
 * (an object with `id` and `sha256`) as media, StreamRef JSON (with `streamId`) as a stream, else JSON.
 */
export function pinValueFromPlain(value: JsonValue): PinValue {
  if (typeof value === "string") return create(PinValueSchema, { value: { case: "text", value } });
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    if (typeof value.base64 === "string" && Object.keys(value).length === 1) {
      return create(PinValueSchema, { value: { case: "inlineBytes", value: Buffer.from(value.base64, "base64") } });
    }
    if (typeof value.id === "string" && typeof value.sha256 === "string") {
      return create(PinValueSchema, { value: { case: "media", value: fromJson(MediaRefSchema, value, { ignoreUnknownFields: true }) } });
    }
    if (typeof value.streamId === "string") {
      return create(PinValueSchema, { value: { case: "stream", value: fromJson(StreamRefSchema, value, { ignoreUnknownFields: true }) } });
    }
  }
  return create(PinValueSchema, { value: { case: "json", value: fromJson(ValueSchema, value) } });
}

/** A media output the agent wrote to a local file; the executor (or sidecar) uploads it. */
export interface LocalFileOutput {
  readonly path: string;
  readonly mimeType: string;
}

export type PlainOutput = { readonly value: PinValue } | { readonly file: LocalFileOutput } | { readonly error: string };

/**
 * Turns what an agent put under a result key into a value for an output pin of the declared type:
 * text must be a string; json is anything; binary is {"base64"} or a string; image/audio/video/binary
 * may be MediaRef JSON or {"path", "mime_type"} of a local file; stream is StreamRef JSON.
 */
export function outputFromPlain(pin: Pin, raw: JsonValue): PlainOutput {
  const kind = pinTypeName(pin.type);
  const wrong = (expected: string): PlainOutput => ({
    error: `output "${pin.name}" is ${kind} and must be ${expected}, got ${JSON.stringify(raw).slice(0, 80)}`,
  });
  const value = (v: PinValue["value"]): PlainOutput => ({ value: create(PinValueSchema, { value: v }) });
  switch (pin.type) {
    case PinType.TEXT:
      return typeof raw === "string" ? value({ case: "text", value: raw }) : wrong("a string");
    case PinType.JSON:
      return { value: jsonPinValue(raw) };
    case PinType.STREAM:
      return isRecord(raw) && typeof raw["streamId"] === "string"
        ? value({ case: "stream", value: fromJson(StreamRefSchema, raw, { ignoreUnknownFields: true }) })
        : wrong("a StreamRef");
    default:
      break;
  }
  if (pin.type === PinType.BINARY) {
    if (typeof raw === "string") return value({ case: "inlineBytes", value: Buffer.from(raw) });
    if (isRecord(raw) && typeof raw["base64"] === "string") return value({ case: "inlineBytes", value: Buffer.from(raw["base64"], "base64") });
  }
  if (isMediaPin(pin.type) || pin.type === PinType.BINARY) {
    if (isRecord(raw) && typeof raw["path"] === "string") {
      const mime = raw["mime_type"] ?? raw["mimeType"];
      return { file: { path: raw["path"], mimeType: typeof mime === "string" ? mime : "" } };
    }
    if (isRecord(raw) && typeof raw["id"] === "string") {
      try {
        return value({ case: "media", value: fromJson(MediaRefSchema, raw, { ignoreUnknownFields: true }) });
      } catch (err) {
        return { error: `output "${pin.name}" is not a valid MediaRef: ${String(err)}` };
      }
    }
  }
  return wrong(pin.type === PinType.BINARY ? '{"base64": ...}, a MediaRef or {"path": ...}' : 'a MediaRef or {"path": ..., "mime_type": ...}');
}

/** One parsed stdout line. */
export type PlainLine =
  | { readonly kind: "event"; readonly event: AgentEvent }
  | { readonly kind: "output"; readonly pin: string; readonly raw: JsonValue; readonly event: AgentEvent }
  | { readonly kind: "error"; readonly message: string; readonly event: AgentEvent }
  | { readonly kind: "result"; readonly result: JsonValue };

const levels: Record<string, LogLevel> = { debug: LogLevel.DEBUG, info: LogLevel.INFO, warn: LogLevel.WARN, warning: LogLevel.WARN, error: LogLevel.ERROR };

/** Parses one stdout line; anything that is not a contract event becomes an info log line, so nothing is lost. */
export function parsePlainLine(line: string): PlainLine | undefined {
  if (line.trim() === "") return undefined;
  let parsed: JsonValue;
  try {
    parsed = JSON.parse(line) as JsonValue;
  } catch {
    return { kind: "event", event: logEvent(LogLevel.INFO, line) };
  }
  if (!isRecord(parsed)) return { kind: "event", event: logEvent(LogLevel.INFO, line) };
  if ("result" in parsed && parsed["type"] === undefined) return { kind: "result", result: parsed["result"] ?? null };
  const type = typeof parsed["type"] === "string" ? parsed["type"] : "log";
  const message = typeof parsed["message"] === "string" ? parsed["message"] : "";
  const data = isRecord(parsed["data"]) ? parsed["data"] : {};
  const base = create(AgentEventSchema, {
    time: timeOf(parsed["ts"]),
    correlationId: typeof parsed["correlation_id"] === "string" ? parsed["correlation_id"] : "",
  });
  switch (type) {
    case "progress": {
      const percent = Math.min(100, Math.max(0, numberOr(data["percent"], 0)));
      base.event = {
        case: "progress",
        value: create(ProgressEventSchema, { percent, message: stringOr(data["message"], message), etaSeconds: Math.max(0, numberOr(data["eta_seconds"], 0)) }),
      };
      return { kind: "event", event: base };
    }
    case "heartbeat":
      base.event = { case: "heartbeat", value: create(HeartbeatEventSchema) };
      return { kind: "event", event: base };
    case "checkpoint":
      base.event = { case: "checkpoint", value: create(CheckpointEventSchema, { name: stringOr(data["name"], message), data }) };
      return { kind: "event", event: base };
    case "metric":
      base.event = {
        case: "metric",
        value: create(MetricEventSchema, {
          name: stringOr(data["name"], message) || "metric",
          value: numberOr(data["value"], 0),
          labels: labelsOf(data["labels"]),
        }),
      };
      return { kind: "event", event: base };
    case "output":
      base.event = { case: "log", value: create(LogEventSchema, { level: LogLevel.DEBUG, message: `output ${stringOr(data["pin"], "?")}`, data: {} }) };
      return { kind: "output", pin: stringOr(data["pin"], ""), raw: data["value"] ?? null, event: base };
    case "error":
      base.event = { case: "log", value: create(LogEventSchema, { level: LogLevel.ERROR, message, data }) };
      return { kind: "error", message, event: base };
    default: {
      const level = levels[stringOr(parsed["level"], "info").toLowerCase()] ?? LogLevel.INFO;
      base.event = {
        case: "log",
        value: create(LogEventSchema, { level, message: message || (type === "log" ? "" : `${type}: ${JSON.stringify(data)}`), data }),
      };
      return { kind: "event", event: base };
    }
  }
}

export function logEvent(level: LogLevel, message: string): AgentEvent {
  return create(AgentEventSchema, { time: timestampNow(), event: { case: "log", value: { level, message: message.slice(0, 65536) } } });
}

function timeOf(ts: JsonValue | undefined) {
  const date = typeof ts === "string" ? new Date(ts) : typeof ts === "number" ? new Date(ts < 1e12 ? ts * 1000 : ts) : undefined;
  return date && !Number.isNaN(date.getTime()) ? timestampFromDate(date) : timestampNow();
}

function numberOr(value: JsonValue | undefined, fallback: number): number {
  return typeof value === "number" && Number.isFinite(value) ? value : fallback;
}

function stringOr(value: JsonValue | undefined, fallback: string): string {
  return typeof value === "string" ? value : fallback;
}

function labelsOf(value: JsonValue | undefined): Record<string, string> {
  return isRecord(value) ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)])) : {};
}
