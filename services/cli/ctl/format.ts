import { timestampDate, ValueSchema, type Timestamp } from "@bufbuild/protobuf/wkt";
import { toJsonString, type DescEnum } from "@bufbuild/protobuf";
import type { MediaRef, PinValue, Violation } from "../../../gen/mentatlab/v1/common_pb.js";
import { formatBytes } from "../../shared/format-bytes.js";

/** `RUN_STATE_SUCCEEDED` → `succeeded`: the enum value's local name, lower case. */
export function enumLabel(schema: DescEnum, value: number): string {
  const desc = schema.values.find((v) => v.number === value);
  return desc ? desc.localName.toLowerCase().replaceAll("_", " ") : String(value);
}

export function formatTime(ts: Timestamp | undefined): string {
  return ts ? timestampDate(ts).toISOString() : "-";
}

/** Aligned `label  value` lines, skipping empty values. */
export function table(rows: ReadonlyArray<readonly [string, string | undefined]>): string {
  const shown = rows.filter((row): row is readonly [string, string] => row[1] !== undefined && row[1] !== "");
  const width = Math.max(0, ...shown.map(([label]) => label.length));
  return shown.map(([label, value]) => `${label.padEnd(width)}  ${value}`).join("\n");
}

/** Fixed-width columns with a header row. */
export function columns(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

export function describeMediaRef(ref: MediaRef): string {
  const m = ref.metadata;
  const facts = [
    m && m.width > 0 ? `${m.width}x${m.height}` : "",
    m && m.durationSeconds > 0 ? `${m.durationSeconds.toFixed(2)} s` : "",
    m && m.sampleRate > 0 ? `${m.sampleRate} Hz` : "",
    m && m.channels > 0 ? `${m.channels} ch` : "",
    m?.codec ?? "",
    m?.container ?? "",
  ].filter((f) => f !== "");
  return table([
    ["id", ref.id],
    ["workspace", ref.workspace],
    ["filename", ref.filename],
    ["mime type", ref.mimeType],
    ["size", `${formatBytes(ref.sizeBytes)} (${ref.sizeBytes} bytes)`],
    ["sha256", ref.sha256],
    ["metadata", facts.join(", ")],
    ["owner", ref.owner],
    ["created", ref.createdAt ? formatTime(ref.createdAt) : undefined],
    ["expires", ref.expiresAt ? formatTime(ref.expiresAt) : undefined],
  ]);
}

export function describeViolation(v: Violation): string {
  const where = v.fieldPath === "" ? "(document)" : v.fieldPath;
  return `  ${where}: ${v.message}${v.hint ? `\n    hint: ${v.hint}` : ""}${v.rule ? ` [${v.rule}]` : ""}`;
}

/** A pin value in one line: text and JSON inline (shortened), media and streams by reference. */
export function describePinValue(value: PinValue | undefined): string {
  const v = value?.value;
  switch (v?.case) {
    case "text":
      return JSON.stringify(shorten(v.value));
    case "json":
      return shorten(toJsonString(ValueSchema, v.value));
    case "inlineBytes":
      return `${v.value.byteLength} bytes`;
    case "media":
      return `media ${v.value.id} (${v.value.mimeType}, ${formatBytes(v.value.sizeBytes)})`;
    case "stream":
      return `stream ${v.value.streamId} (${v.value.mimeType})`;
    default:
      return "(empty)";
  }
}

function shorten(text: string, max = 200): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
