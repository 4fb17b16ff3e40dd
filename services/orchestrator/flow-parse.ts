import { create, fromJson, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { type Duration, DurationSchema, timestampFromDate, ValueSchema } from "@bufbuild/protobuf/wkt";
import {
  BackoffKind,
  type Flow,
  EdgeConditionSchema,
  type FlowEdge,
  FlowEdgeSchema,
  FlowGraphSchema,
  FlowMetaSchema,
  type FlowNode,
  FlowNodeSchema,
  FlowSchema,
  JoinMode,
  MapFailurePolicy,
  MapSpecSchema,
  RetryPolicySchema,
} from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { isRecord } from "../../agent-contract/json-record.js";
import { readDocumentRecord, RecordReader } from "../registry/document-reader.js";
import { readBackpressure } from "../registry/names.js";
import { parseQuantity } from "../registry/quantity.js";
import { Violations } from "../registry/violations.js";

const backoffNames: ReadonlyMap<string, BackoffKind> = new Map([
  ["fixed", BackoffKind.FIXED],
  ["linear", BackoffKind.LINEAR],
  ["exponential", BackoffKind.EXPONENTIAL],
]);
const failurePolicyNames: ReadonlyMap<string, MapFailurePolicy> = new Map([
  ["fail_fast", MapFailurePolicy.FAIL_FAST],
  ["continue", MapFailurePolicy.CONTINUE],
]);
const joinNames: ReadonlyMap<string, JoinMode> = new Map([
  ["all", JoinMode.ALL],
  ["any", JoinMode.ANY],
]);

export interface ParsedFlow {
  readonly flow: Flow | undefined;
  readonly violations: Violations;
}

/**
 * Reads a flow written as YAML or JSON in the design's shape:
 * `apiVersion`, `kind: Flow`, `meta`, `graph.nodes[]{id, agent (or type), params, timeout, retry,
 * map: {pin, concurrency, on_failure} (or just the pin), join: all|any}`,
 * `graph.edges[]{from: "node.pin", to: "node.pin", when: {pin, equals} | {expr} | "<CEL>", backpressure,
 * backpressure_window_bytes}`. Durations are seconds or strings like `30s`, `500ms`, `2m`.
 */
export function parseFlowText(text: string): ParsedFlow {
  const violations = new Violations();
  const r = readDocumentRecord(text, violations, "flow", "start the document with `apiVersion: v1` and `kind: Flow`");
  if (!r) return { flow: undefined, violations };
  const flow = create(FlowSchema, { apiVersion: r.string("api_version", "apiVersion"), kind: r.string("kind") });
  const meta = r.object("meta", "metadata");
  if (meta) {
    const m = new RecordReader(meta, "meta", violations);
    flow.meta = create(FlowMetaSchema, {
      id: m.string("id"),
      name: m.string("name"),
      version: m.string("version"),
      description: m.string("description"),
    });
    const createdAt = m.string("created_at", "createdAt");
    if (createdAt) {
      const date = new Date(createdAt);
      if (Number.isNaN(date.getTime()))
        violations.add("meta.created_at", "field.type", `"${createdAt}" is not a date`, "use ISO 8601, e.g. 2025-01-31T12:00:00Z");
      else flow.meta.createdAt = timestampFromDate(date);
    }
    m.rejectUnknown();
  }
  const graph = r.object("graph");
  if (graph) {
    const g = new RecordReader(graph, "graph", violations);
    flow.graph = create(FlowGraphSchema, {
      nodes: g.array("nodes").map((node, i) => readNode(node, `graph.nodes[${i}]`, violations)),
      edges: g.array("edges").map((edge, i) => readEdge(edge, `graph.edges[${i}]`, violations)),
    });
    g.rejectUnknown();
  }
  r.rejectUnknown();
  return { flow, violations };
}

function readNode(value: JsonValue, path: string, violations: Violations): FlowNode {
  if (!isRecord(value)) {
    violations.add(path, "field.type", "a node must be a mapping", "write `- id: resize\\n  agent: org.example.resize`");
    return create(FlowNodeSchema);
  }
  const r = new RecordReader(value, path, violations);
  const node = create(FlowNodeSchema, {
    id: r.string("id"),
    agent: r.string("agent", "type"),
    agentVersion: r.string("agent_version", "agentVersion", "version"),
  });
  const params = r.object("params", "parameters");
  if (params) node.params = params as JsonObject;
  const timeout = readDuration(r, "timeout", violations);
  if (timeout) node.timeout = timeout;
  const retry = r.object("retry", "retryPolicy", "retry_policy");
  if (retry) {
    const rr = new RecordReader(retry, r.child("retry"), violations);
    const backoffName = rr.string("backoff").toLowerCase();
    const backoff = backoffName ? backoffNames.get(backoffName) : BackoffKind.UNSPECIFIED;
    if (backoff === undefined)
      violations.add(rr.child("backoff"), "retry.backoff_known", `unknown backoff "${backoffName}"`, "use fixed, linear or exponential");
    node.retry = create(RetryPolicySchema, { maxAttempts: rr.number("max_attempts", "maxAttempts", "attempts"), backoff: backoff ?? BackoffKind.UNSPECIFIED });
    const initialDelay = readDuration(rr, "initial_delay", violations, "initialDelay", "delay");
    if (initialDelay) node.retry.initialDelay = initialDelay;
    rr.rejectUnknown();
  }
  readMap(r, node, violations);
  const join = r.string("join").toLowerCase();
  if (join) {
    const mode = joinNames.get(join);
    if (mode === undefined) violations.add(r.child("join"), "node.join_known", `unknown join "${join}"`, "use all (the default) or any");
    else node.join = mode;
  }
  r.rejectUnknown();
  return node;
}

/** `map: pin` or `map: {pin, concurrency, on_failure}`. */
function readMap(r: RecordReader, node: FlowNode, violations: Violations): void {
  const raw = r.raw("map");
  if (raw === undefined || raw === null) return;
  if (typeof raw === "string") {
    node.map = create(MapSpecSchema, { pin: raw });
    return;
  }
  const spec = r.object("map");
  if (!spec) return;
  const mr = new RecordReader(spec, r.child("map"), violations);
  node.map = create(MapSpecSchema, { pin: mr.string("pin") });
  const concurrency = mr.raw("concurrency");
  if (concurrency !== undefined && concurrency !== null) {
    if (typeof concurrency === "number" && Number.isInteger(concurrency)) node.map.concurrency = Math.max(0, concurrency);
    else violations.add(mr.child("concurrency"), "map.concurrency", `${JSON.stringify(concurrency)} is not a whole number`, "write concurrency: 8");
  }
  const policyName = mr.string("on_failure", "onFailure").toLowerCase().replace("-", "_");
  if (policyName) {
    const policy = failurePolicyNames.get(policyName);
    if (policy === undefined)
      violations.add(mr.child("on_failure"), "map.on_failure_known", `unknown on_failure "${policyName}"`, "use fail_fast (the default) or continue");
    else node.map.onFailure = policy;
  }
  mr.rejectUnknown();
}

function readEdge(value: JsonValue, path: string, violations: Violations): FlowEdge {
  if (!isRecord(value)) {
    violations.add(path, "field.type", "an edge must be a mapping", 'write `- { from: "a.out", to: "b.in" }`');
    return create(FlowEdgeSchema);
  }
  const r = new RecordReader(value, path, violations);
  const edge = create(FlowEdgeSchema, {
    from: r.string("from", "source"),
    to: r.string("to", "target"),
    backpressure: readBackpressure(r, violations),
    backpressureWindowBytes: readWindowBytes(r, violations),
  });
  const whenText = r.raw("when", "condition");
  if (typeof whenText === "string") {
    edge.when = create(EdgeConditionSchema, { expr: whenText });
    r.rejectUnknown();
    return edge;
  }
  const when = r.object("when", "condition");
  if (when) {
    const wr = new RecordReader(when, r.child("when"), violations);
    const pin = wr.string("pin");
    const equals = wr.raw("equals");
    const expr = wr.string("expr");
    if (expr && (equals !== undefined || pin))
      violations.add(
        wr.child("expr"),
        "edge.condition_one_test",
        "the condition has both an expr and a pin/equals test",
        "keep one: `{ expr: \"outputs.kind == 'photo'\" }` or `{ pin: kind, equals: photo }`",
      );
    else if (expr) edge.when = create(EdgeConditionSchema, { expr });
    else if (equals === undefined)
      violations.add(
        wr.child("equals"),
        "edge.condition_value",
        "the condition gives no value to compare with",
        "write `when: { pin: route, equals: image }` or `when: { expr: \"outputs.route == 'image'\" }`",
      );
    else edge.when = create(EdgeConditionSchema, { pin, equals: fromJson(ValueSchema, equals) });
    wr.rejectUnknown();
  }
  r.rejectUnknown();
  return edge;
}

const MAX_WINDOW_BYTES = 1024 * 1024 * 1024;

/** `backpressure_window_bytes`: a byte count or a quantity such as `1Mi`; 0 when absent. */
function readWindowBytes(r: RecordReader, violations: Violations): bigint {
  const field = "backpressure_window_bytes";
  const raw = r.raw(field, "backpressureWindowBytes");
  if (raw === undefined || raw === null) return 0n;
  const bytes = typeof raw === "number" ? raw : typeof raw === "string" ? parseQuantity(raw.trim()) : undefined;
  if (bytes === undefined || !Number.isInteger(bytes) || bytes < 1 || bytes > MAX_WINDOW_BYTES) {
    violations.add(
      r.child(field),
      "edge.backpressure_window",
      `${JSON.stringify(raw)} is not a window size`,
      "write a byte count from 1 to 1Gi, such as 1048576 or 1Mi",
    );
    return 0n;
  }
  return BigInt(bytes);
}

const durationPattern = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;
const unitSeconds: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600 };

function readDuration(r: RecordReader, field: string, violations: Violations, ...aliases: string[]): Duration | undefined {
  const raw = r.raw(field, ...aliases);
  if (raw === undefined || raw === null) return undefined;
  const match = typeof raw === "number" ? [String(raw), String(raw), "s"] : typeof raw === "string" ? durationPattern.exec(raw.trim()) : null;
  if (!match) {
    violations.add(r.child(field), "field.duration", `${JSON.stringify(raw)} is not a duration`, 'write seconds (30) or a string such as "30s", "500ms", "2m"');
    return undefined;
  }
  return durationFromSeconds(Number(match[1]) * (unitSeconds[match[2] ?? "s"] ?? 1));
}

export function durationFromSeconds(seconds: number): Duration {
  const whole = Math.floor(seconds);
  return create(DurationSchema, { seconds: BigInt(whole), nanos: Math.round((seconds - whole) * 1e9) });
}

export function durationToMs(duration: Duration | undefined): number | undefined {
  if (!duration) return undefined;
  return Number(duration.seconds) * 1000 + duration.nanos / 1e6;
}
