import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { PinValue } from "../../gen/mentatlab/v1/common_pb.js";
import { type NodeReuse, NodeState, RunState, type Run, type RunEvent } from "../../gen/mentatlab/v1/orchestrator_pb.js";

/** One try of a node: from its first event of that attempt to the state that ended it. */
export interface Attempt {
  readonly attempt: number;
  state: NodeState;
  startedAt: Date;
  endedAt?: Date;
  reason: string;
}

/** What the run page knows about one node, rebuilt from the run's events. */
export interface NodeView {
  readonly nodeId: string;
  readonly agent: string;
  state: NodeState;
  readonly attempts: Attempt[];
  progress: number;
  progressMessage: string;
  readonly log: string[];
  /** The latest attempt's outputs by pin: an attempt reports each pin once, a retry replaces them. */
  readonly outputs: Map<string, PinValue>;
  /** Where its outputs came from when no agent ran for it (a retry kept them, or a cache hit). */
  reused?: NodeReuse;
  /** Set for a node the flow maps over a list. */
  readonly map?: MapView;
}

/** A mapped node's items, from its MapItemChanged events. */
export interface MapView {
  total: number;
  succeeded: number;
  failed: number;
  /** Items that failed, by index, with why. */
  readonly failures: Map<number, string>;
}

export interface RunView {
  readonly runId: string;
  state: RunState;
  reason: string;
  readonly createdAt: Date;
  endedAt?: Date;
  readonly nodes: Map<string, NodeView>;
}

const endedNodeStates: ReadonlySet<NodeState> = new Set([NodeState.SUCCEEDED, NodeState.FAILED, NodeState.CANCELLED, NodeState.SKIPPED]);

/** The view before any event: every node of the flow pending. Events from seq 0 then fill it in. */
export function initialRunView(run: Run): RunView {
  const nodes = new Map<string, NodeView>();
  for (const node of run.flow?.graph?.nodes ?? []) {
    nodes.set(node.id, {
      nodeId: node.id,
      agent: node.agent,
      state: NodeState.PENDING,
      attempts: [],
      progress: 0,
      progressMessage: "",
      log: [],
      outputs: new Map(),
      ...(node.map ? { map: { total: 0, succeeded: 0, failed: 0, failures: new Map() } } : {}),
    });
  }
  return { runId: run.runId, state: RunState.PENDING, reason: "", createdAt: run.createdAt ? timestampDate(run.createdAt) : new Date(), nodes };
}

/** Folds one WatchRun event into the view. Events arrive once each, in sequence order. */
export function applyRunEvent(view: RunView, event: RunEvent): void {
  const at = event.time ? timestampDate(event.time) : new Date();
  const e = event.event;
  if (e.case === "runState") {
    view.state = e.value.state;
    view.reason = e.value.reason;
    if (e.value.state === RunState.SUCCEEDED || e.value.state === RunState.FAILED || e.value.state === RunState.CANCELLED) view.endedAt = at;
    return;
  }
  const node = view.nodes.get(event.nodeId);
  if (!node) return;
  if (e.case === "nodeState") {
    node.state = e.value.state;
    if (e.value.reused) node.reused = e.value.reused;
    if (e.value.state === NodeState.PENDING) return;
    // A mapped node's attempt numbers count its items' attempts: as a whole it runs once.
    const attempt = attemptOf(node, node.map ? 1 : Math.max(1, e.value.attempt), at);
    attempt.state = e.value.state;
    if (e.value.reason) attempt.reason = e.value.reason;
    if (endedNodeStates.has(e.value.state) || e.value.state === NodeState.RETRYING) attempt.endedAt = at;
    if (e.value.state === NodeState.SUCCEEDED) {
      node.progress = 100;
      node.progressMessage = "done";
    }
    if (e.value.state === NodeState.RUNNING && e.value.attempt > 1) node.outputs.clear();
  } else if (e.case === "mapItem" && node.map) {
    const map = node.map;
    Object.assign(map, { total: e.value.total, succeeded: e.value.succeeded, failed: e.value.failed });
    if (e.value.state === NodeState.FAILED) map.failures.set(e.value.index, e.value.reason);
    else map.failures.delete(e.value.index);
    node.progress = map.total > 0 ? (100 * (map.succeeded + map.failed)) / map.total : 0;
    node.progressMessage = describeMap(map);
  } else if (e.case === "agent" && event.itemIndex !== undefined) {
    // An item's own events: its outputs become the node's lists once every item ended.
    const a = e.value.event;
    if (a.case === "log") node.log.push(`[${event.itemIndex}] ${a.value.message}`);
  } else if (e.case === "agent") {
    const a = e.value.event;
    if (a.case === "progress") {
      node.progress = a.value.percent;
      node.progressMessage = a.value.message;
    } else if (a.case === "log") node.log.push(a.value.message);
    else if (a.case === "output" && a.value.value) node.outputs.set(a.value.pin, a.value.value);
  }
}

/** `map 37/100`, `map 100/100, 2 failed (items 3, 17)`. */
export function describeMap(map: MapView): string {
  const failed = [...map.failures.keys()].sort((a, b) => a - b);
  return `map ${map.succeeded + map.failed}/${map.total}` + (failed.length > 0 ? `, ${failed.length} failed (items ${failed.join(", ")})` : "");
}

function attemptOf(node: NodeView, number: number, at: Date): Attempt {
  let attempt = node.attempts.find((a) => a.attempt === number);
  if (!attempt) {
    attempt = { attempt: number, state: NodeState.RUNNING, startedAt: at, reason: "" };
    node.attempts.push(attempt);
  }
  return attempt;
}

/** `1.2 s`, `3 min 4 s`: how long from `start` to `end` (or to now, for what still runs). */
export function formatDuration(start: Date, end: Date | undefined, now: Date = new Date()): string {
  const ms = Math.max(0, (end ?? now).getTime() - start.getTime());
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 60) return `${minutes} min ${Math.floor((ms % 60_000) / 1000)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}
