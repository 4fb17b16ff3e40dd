import { create, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { timestampFromMs, timestampNow, type Timestamp } from "@bufbuild/protobuf/wkt";
import { AgentEventSchema, LogLevel, type AgentEvent } from "../gen/mentatlab/v1/common_pb.js";

/** One stdout line of a plain-contract agent, understood. */
export type AgentLine =
  | { readonly kind: "event"; readonly event: AgentEvent }
  | { readonly kind: "result"; readonly result: JsonValue };

const levels: Readonly<Record<string, LogLevel>> = {
  debug: LogLevel.DEBUG,
  info: LogLevel.INFO,
  warn: LogLevel.WARN,
  warning: LogLevel.WARN,
  error: LogLevel.ERROR,
  critical: LogLevel.ERROR,
};

/**
 * Reads one line of the original MentatLab contract: `{"type", "level", "message", "data",
 * "correlation_id", "ts"}` events and the final `{"result": …}`. Lines that are not JSON objects are
 * kept as info logs, so an agent printing plain text still shows up in its run's events.
 */
export function parseAgentLine(line: string): AgentLine | undefined {
  const trimmed = line.trim();
  if (trimmed === "") return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(trimmed);
  } catch {
    return { kind: "event", event: logEvent(LogLevel.INFO, trimmed, undefined, timestampNow(), "") };
  }
  if (!isObject(parsed)) {
    return { kind: "event", event: logEvent(LogLevel.INFO, trimmed, undefined, timestampNow(), "") };
  }
  if ("result" in parsed && parsed.type === undefined) return { kind: "result", result: parsed.result ?? null };
  return { kind: "event", event: eventOf(parsed) };
}

function eventOf(line: JsonObject): AgentEvent {
  const time = timeOf(line.ts);
  const correlationId = typeof line.correlation_id === "string" ? line.correlation_id : "";
  const message = typeof line.message === "string" ? line.message : "";
  const data = isObject(line.data) ? line.data : undefined;
  const base = { time, correlationId };
  switch (line.type) {
    case "progress": {
      const percent = numberOf(data?.percent) ?? numberOf(line.percent) ?? 0;
      return create(AgentEventSchema, {
        ...base,
        event: {
          case: "progress",
          value: {
            percent: Math.min(100, Math.max(0, percent)),
            message: typeof data?.message === "string" ? data.message : message,
            etaSeconds: Math.max(0, numberOf(data?.eta_seconds) ?? 0),
          },
        },
      });
    }
    case "heartbeat":
      return create(AgentEventSchema, { ...base, event: { case: "heartbeat", value: {} } });
    case "checkpoint":
      return create(AgentEventSchema, {
        ...base,
        event: {
          case: "checkpoint",
          value: { name: message || (typeof data?.name === "string" ? data.name : ""), data },
        },
      });
    case "metric": {
      const name = (typeof data?.name === "string" ? data.name : "") || message || "metric";
      const labels = isObject(data?.labels)
        ? Object.fromEntries(Object.entries(data.labels).map(([key, value]) => [key, String(value)]))
        : {};
      return create(AgentEventSchema, {
        ...base,
        event: { case: "metric", value: { name, value: numberOf(data?.value) ?? 0, labels } },
      });
    }
    case "log":
      return logEvent(levels[String(line.level).toLowerCase()] ?? LogLevel.INFO, message, data, time, correlationId);
    default: {
      // Event types this mesh has no message for yet are kept as logs rather than dropped.
      const kept: JsonObject = { ...(data ?? {}), type: typeof line.type === "string" ? line.type : "unknown" };
      return logEvent(levels[String(line.level).toLowerCase()] ?? LogLevel.INFO, message, kept, time, correlationId);
    }
  }
}

function logEvent(
  level: LogLevel,
  message: string,
  data: JsonObject | undefined,
  time: Timestamp,
  correlationId: string,
): AgentEvent {
  return create(AgentEventSchema, {
    time,
    correlationId,
    event: { case: "log", value: { level, message: message.slice(0, 65536), data } },
  });
}


function timeOf(ts: JsonValue | undefined): Timestamp {
  if (typeof ts === "number" && Number.isFinite(ts)) {
    // Seconds since the epoch (Python's time.time()) unless it is clearly milliseconds.
    return timestampFromMs(ts > 1e11 ? ts : ts * 1000);
  }
  if (typeof ts === "string") {
    const ms = Date.parse(ts);
    if (!Number.isNaN(ms)) return timestampFromMs(ms);
  }
  return timestampNow();
}

function numberOf(value: JsonValue | undefined): number | undefined {
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
