import { create } from "@bufbuild/protobuf";
import { type Timestamp, timestampNow } from "@bufbuild/protobuf/wkt";
import {
  type AgentEvent,
  AgentEventSchema,
  LogLevel,
  OutputEventSchema,
  PinType,
  type PinValue,
  PinValueSchema,
  type StreamRef,
} from "../../gen/mentatlab/v1/common_pb.js";
import { logEvent } from "../../agent-contract/plain-contract.js";
import {
  JoinMode,
  type MapItem,
  MapItemChangedSchema,
  MapItemSchema,
  MapProgressSchema,
  type NodeReuse,
  NodeReuseSchema,
  NodeRunSchema,
  NodeState,
  ReuseKind,
  type NodeRun,
  NodeStateChangedSchema,
  type Run,
  type RunEvent,
  RunEventSchema,
  RunState,
  RunStateChangedSchema,
  type ReportNodeEventsRequest,
} from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { calculateResources } from "../registry/index.js";
import { isRetryable } from "../shared/retryable.js";
import type { RunTokenSigner } from "../shared/run-token.js";
import { mayRetry, retryDelayMs } from "./backoff.js";
import type { OrchestratorConfig } from "./config.js";

import { EdgeError, processEdge } from "./edge-processor.js";
import type { ExecutionOutcome, Executor } from "./executor.js";
import { durationToMs } from "./flow-parse.js";
import type { FlowPlan, UpstreamEdge } from "./flow-validate.js";
import { collectList, failsFast, listItems, mapConcurrency } from "./map-items.js";
import type { MediaStore } from "./media-store.js";
import { cacheUse, nodeCacheKey } from "./node-cache.js";
import { producerOf, reuseReason } from "./retry.js";
import type { OrchestratorMetrics } from "./metrics.js";
import type { RunStore } from "./run-store.js";
import type { Semaphore } from "./semaphore.js";
import { type StreamOpener, streamConsumers } from "./stream-opener.js";

export interface RunDriverDeps {
  readonly store: RunStore;
  /** This replica's lease owner id. */
  readonly owner: string;
  readonly executor: Executor;
  readonly slots: Semaphore;
  readonly streams: StreamOpener | undefined;
  readonly media: MediaStore | undefined;
  readonly runTokens: RunTokenSigner;
  readonly config: OrchestratorConfig;
  /** Told of every node state change, for `processing_duration_seconds`. */
  readonly metrics?: OrchestratorMetrics;
  /** Called once when the driver stops: the run ended, or this replica lost it. */
  readonly onStopped: (runId: string) => void;
}

/** What `report` needs of a ReportNodeEvents request. */
export type NodeReport = Pick<ReportNodeEventsRequest, "nodeId" | "attempt" | "events" | "reporterId" | "firstEventSeq">;

type Readiness = { kind: "ready" } | { kind: "wait" } | { kind: "skip"; reason: string } | { kind: "fail"; reason: string };

/** Where one edge into a node stands. */
type EdgeStatus =
  { kind: "wait" } | { kind: "taken" } | { kind: "not_taken"; reason: string } | { kind: "upstream_failed"; reason: string } | { kind: "fail"; reason: string };

/** A mapped node being run: its items' values and which are queued, in flight, or waiting to retry. */
interface MapRun {
  readonly values: readonly PinValue[];
  /** Indices ready to start, lowest first. */
  readonly queue: number[];
  /** Indices looking up the cache, waiting for a slot, or running. */
  readonly active: Set<number>;
  /** Indices waiting for a retry's backoff. */
  readonly waiting: Set<number>;
  /** Set once an item failed under fail fast: nothing more starts. */
  stopping: boolean;
}

const finalNodeStates: ReadonlySet<NodeState> = new Set([NodeState.SUCCEEDED, NodeState.FAILED, NodeState.CANCELLED, NodeState.SKIPPED]);
/** Margin on a run token's lifetime beyond the attempt's timeout, for uploads after the agent ends. */
const tokenMarginSeconds = 300;
/** Between attempts to write a run's events while the store is down. */
const storeRetryMs = 200;

/**
 * Drives one run on the replica holding its lease: starts each node when all its inputs are ready
 * (a `stream` input as soon as the upstream's StreamRef exists), runs attempts through the executor
 * within the shared concurrency bound, retries transient failures with backoff, skips the downstream
 * of failed nodes, and writes every change as an event together with the run's snapshot.
 *
 * Independent branches keep running after a node fails; the run ends FAILED once nothing else can
 * start, so partial results stay available.
 */
export class RunDriver {
  private readonly nodes = new Map<string, NodeRun>();
  private readonly index = new Map<string, number>();
  private readonly running = new Map<string, AbortController>();
  private readonly launching = new Set<string>();
  private readonly retryTimers = new Map<string, NodeJS.Timeout>();
  private readonly candidates = new Set<string>();
  private readonly consumed = new Set<string>();
  private readonly maps = new Map<string, MapRun>();
  // Highest event number recorded per (node, attempt, reporter): a report sent again is not recorded twice.
  private readonly reportedThrough = new Map<string, bigint>();
  private pending: RunEvent[] = [];
  private flushing: Promise<void> | undefined;
  private stopped = false;
  /** Set by `abandon`, even after the run finished: its remaining events are no longer this replica's to write. */
  private abandoned = false;
  /** How this run uses the node cache (its submitted CacheMode). */
  private readonly cache: { read: boolean; write: boolean };

  constructor(
    private readonly run: Run,
    private readonly plan: FlowPlan,
    private readonly deps: RunDriverDeps,
  ) {
    this.cache = cacheUse(run.cache);
    for (const node of run.nodes) this.nodes.set(node.nodeId, node);
    plan.order.forEach((id, i) => this.index.set(id, i));
    for (const planned of plan.nodes.values()) {
      for (const source of planned.inputs.values())
        for (const edge of source.kind === "edge" ? source.edges : []) this.consumed.add(`${edge.node}.${edge.pin}`);
    }
  }

  get runId(): string {
    return this.run.runId;
  }

  /** Starts a new run, or continues one another replica left: its in-flight attempts start over. */
  start(): void {
    for (const node of this.nodes.values()) {
      if (node.state !== NodeState.RUNNING && node.state !== NodeState.RETRYING) continue;
      node.state = NodeState.PENDING;
      node.outputs = {};
      // Items that succeeded are kept; the others start over when the node does.
      for (const item of node.map?.items ?? []) if (item.state !== NodeState.SUCCEEDED) item.state = NodeState.PENDING;
      this.emitNode(node, "re-queued: the orchestrator running it stopped");
    }
    for (const id of this.plan.order) this.candidates.add(id);
    this.pump();
  }

  /** Stops every agent and marks the run and its unfinished nodes cancelled. */
  cancel(reason: string): void {
    if (this.stopped) return;
    for (const node of this.nodes.values()) {
      if (finalNodeStates.has(node.state)) continue;
      for (const item of node.map?.items ?? []) if (!finalNodeStates.has(item.state)) item.state = NodeState.CANCELLED;
      node.state = NodeState.CANCELLED;
      node.endedAt = timestampNow();
      node.error = reason;
      this.emitNode(node, reason);
    }
    this.finish(RunState.CANCELLED, reason);
  }

  /** Stops work without writing anything: the lease is gone (or the process closes) and another replica takes over. */
  abandon(): void {
    this.abandoned = true;
    if (this.stopped) return;
    this.stopped = true;
    this.stopAll("abandoned");
    this.deps.onStopped(this.run.runId);
  }

  /**
   * Events a node's sidecar reported; false when they belong to an attempt that is no longer current.
   * Numbered events (a reporter id) already recorded are skipped.
   */
  report(report: NodeReport): boolean {
    const node = this.nodes.get(report.nodeId);
    const running = node && runningAttempt(node, report.attempt);
    if (this.stopped || !node || !running) return false;
    let events = report.events;
    if (report.reporterId !== "") {
      const key = `${report.nodeId}\u0000${report.attempt}\u0000${report.reporterId}`;
      const through = this.reportedThrough.get(key) ?? 0n;
      const first = report.firstEventSeq > 0n ? report.firstEventSeq : 1n;
      events = events.slice(Number(through >= first ? through - first + 1n : 0n));
      if (events.length > 0) this.reportedThrough.set(key, first + BigInt(report.events.length) - 1n);
    }
    for (const event of events) {
      if (running.$typeName === "mentatlab.v1.MapItem") this.recordItemEvent(node, running, event);
      else this.recordAgentEvent(node, event);
    }
    return true;
  }

  private pump(): void {
    while (!this.stopped && this.candidates.size > 0) {
      const ids = [...this.candidates].sort((a, b) => (this.index.get(a) ?? 0) - (this.index.get(b) ?? 0));
      this.candidates.clear();
      for (const id of ids) {
        const node = this.nodes.get(id);
        if (!node || node.state !== NodeState.PENDING || this.launching.has(id) || this.running.has(id)) continue;
        const readiness = this.readiness(id);
        if (readiness.kind === "ready") this.launch(id);
        else if (readiness.kind === "skip") this.settle(node, NodeState.SKIPPED, readiness.reason);
        else if (readiness.kind === "fail") this.settle(node, NodeState.FAILED, readiness.reason);
      }
    }
    this.finishIfDone();
  }

  private readiness(id: string): Readiness {
    const planned = this.plan.nodes.get(id);
    if (!planned) return { kind: "fail", reason: "node is not in the plan" };
    if (planned.node.join === JoinMode.ANY) return this.joinAnyReadiness(id);
    for (const [pinName, source] of planned.inputs) {
      if (source.kind === "submitted") continue;
      for (const edge of source.edges) {
        const status = this.edgeStatus(edge);
        if (status.kind === "wait") return status;
        if (status.kind === "not_taken" || status.kind === "upstream_failed") return { kind: "skip", reason: status.reason };
        if (status.kind === "fail") return status;
        const required = planned.manifest.inputs.find((p) => p.name === pinName)?.required ?? false;
        if (!this.nodes.get(edge.node)?.outputs[edge.pin] && required)
          return { kind: "fail", reason: `upstream ${edge.node} produced no value on "${edge.pin}" for required input "${pinName}"` };
      }
    }
    return { kind: "ready" };
  }

  /**
   * A node joining any branch runs once every upstream node ended, if at least one edge into it was
   * taken; a required pin none of whose edges was taken fails it.
   */
  private joinAnyReadiness(id: string): Readiness {
    const planned = this.plan.nodes.get(id);
    if (!planned) return { kind: "fail", reason: "node is not in the plan" };
    const notTaken: string[] = [];
    let anyTaken = false;
    const unfed: string[] = [];
    for (const [pinName, source] of planned.inputs) {
      if (source.kind === "submitted") continue;
      let pinTaken = false;
      for (const edge of source.edges) {
        const status = this.edgeStatus(edge);
        if (status.kind === "wait" || status.kind === "upstream_failed" || status.kind === "fail")
          return status.kind === "upstream_failed" ? { kind: "skip", reason: status.reason } : status;
        if (status.kind === "not_taken") notTaken.push(status.reason);
        else pinTaken = true;
      }
      anyTaken ||= pinTaken;
      if (!pinTaken && planned.manifest.inputs.find((p) => p.name === pinName)?.required) unfed.push(pinName);
    }
    if (!anyTaken && notTaken.length > 0) return { kind: "skip", reason: `no branch into it was taken (${notTaken.join("; ")})` };
    if (unfed.length > 0) return { kind: "fail", reason: `no branch into required input ${unfed.map((p) => `"${p}"`).join(", ")} was taken` };
    return { kind: "ready" };
  }

  /** Whether an edge is taken yet: its source node's state, then its condition, tested once the source succeeded. */
  private edgeStatus(edge: UpstreamEdge): EdgeStatus {
    const upstream = this.nodes.get(edge.node);
    const upstreamPin = this.plan.nodes.get(edge.node)?.manifest.outputs.find((p) => p.name === edge.pin);
    if (!upstream || !upstreamPin) return { kind: "fail", reason: `upstream ${edge.node}.${edge.pin} is not in the plan` };
    if (upstream.state === NodeState.FAILED) return { kind: "upstream_failed", reason: `upstream node "${edge.node}" failed` };
    if (upstream.state === NodeState.SKIPPED || upstream.state === NodeState.CANCELLED)
      return { kind: "not_taken", reason: `upstream node "${edge.node}" did not run` };
    if (upstreamPin.type === PinType.STREAM) {
      if (upstream.outputs[edge.pin]) return { kind: "taken" };
      if (upstream.state === NodeState.SUCCEEDED) return { kind: "fail", reason: `upstream ${edge.node} finished without opening stream ${edge.pin}` };
      return { kind: "wait" };
    }
    if (upstream.state !== NodeState.SUCCEEDED) return { kind: "wait" };
    const result = edge.when?.test(upstream.outputs, edge.node, edge.pin) ?? { taken: true };
    if ("error" in result) return { kind: "fail", reason: result.error };
    return result.taken ? { kind: "taken" } : { kind: "not_taken", reason: result.reason };
  }

  private launch(id: string): void {
    if (this.plan.nodes.get(id)?.node.map) {
      this.startMap(id);
      return;
    }
    this.launching.add(id);
    void (async () => {
      const planned = this.plan.nodes.get(id);
      const node = this.nodes.get(id);
      const cacheKey = planned && (this.cache.read || this.cache.write) ? nodeCacheKey(planned, this.inputValues(id)) : undefined;
      const cached = cacheKey && node && node.attempt === 0 ? await this.cachedOutputs(id, cacheKey) : undefined;
      if (cached && node) {
        node.reused = cached;
        for (const [pin, value] of Object.entries(cached.outputs)) this.recordOutput(node, pin, value);
        node.progressPercent = 100;
        this.settle(node, NodeState.SUCCEEDED, reuseReason(node.reused));
        this.launching.delete(id);
        this.pump();
        return;
      }
      await this.deps.slots.acquire();
      this.launching.delete(id);
      if (this.stopped) {
        this.deps.slots.release();
        return;
      }
      const controller = new AbortController();
      this.running.set(id, controller);
      try {
        await this.attempt(id, controller, this.cache.write ? cacheKey : undefined);
      } finally {
        this.running.delete(id);
        this.deps.slots.release();
      }
      this.pump();
    })();
  }

  /**
   * What the cache holds for a key, as the reuse to record with its outputs; undefined (run it) on a
   * miss, when the run does not read the cache, or when a stored object an entry names is gone (the
   * entry outlived it). A store that fails to answer is a miss too: running the agent is always
   * correct, only slower.
   */
  private async cachedOutputs(id: string, key: string): Promise<(NodeReuse & { outputs: Record<string, PinValue> }) | undefined> {
    if (!this.cache.read) return undefined;
    const entry = await this.deps.store.cacheGet(this.run.workspace, key).catch(() => undefined);
    if (!entry?.reused || !(await this.mediaStillStored(id, entry.outputs)) || this.stopped) return undefined;
    return Object.assign(create(NodeReuseSchema, { ...entry.reused, kind: ReuseKind.CACHE }), { outputs: entry.outputs });
  }

  private async mediaStillStored(id: string, outputs: Readonly<Record<string, PinValue>>): Promise<boolean> {
    const refs = Object.values(outputs).flatMap((v) => (v.value.case === "media" ? [v.value.value] : []));
    const media = this.deps.media;
    if (refs.length === 0 || !media) return true;
    const token = this.deps.runTokens.mint(
      { runId: this.run.runId, nodeId: id, attempt: 0, user: this.run.owner, workspace: this.run.workspace },
      tokenMarginSeconds,
    );
    try {
      await Promise.all(refs.map((ref) => media.stat(ref.id, token)));
      return true;
    } catch {
      return false;
    }
  }

  /** Stores outputs under their key with where they came from; a store that fails only costs the reuse. */
  private async remember(key: string, nodeId: string, outputs: Record<string, PinValue>, origin: NodeReuse): Promise<void> {
    const entry = create(NodeRunSchema, { nodeId, outputs, reused: origin });
    await this.deps.store.cachePut(this.run.workspace, key, entry, this.deps.config.cacheTtlSeconds * 1000).catch(() => undefined);
  }

  private async attempt(id: string, controller: AbortController, cacheKey: string | undefined): Promise<void> {
    const node = this.nodes.get(id);
    const planned = this.plan.nodes.get(id);
    if (!node || !planned) return;
    node.attempt += 1;
    node.state = NodeState.RUNNING;
    node.startedAt = timestampNow();
    node.endedAt = undefined;
    node.error = "";
    node.progressPercent = 0;
    // Each attempt reports its own outputs; a failed attempt's values must not stand in for this one's.
    node.outputs = {};
    this.markRunRunning();
    this.emitNode(node, "");
    const outcome = await this.execute(node, node.attempt, this.inputValues(id), controller, (event) => this.recordAgentEvent(node, event));
    if (!outcome || this.stopped) return;
    if (outcome.kind === "succeeded") {
      for (const [pin, value] of Object.entries(outcome.outputs)) this.recordOutput(node, pin, value);
      node.progressPercent = 100;
      if (cacheKey) await this.remember(cacheKey, id, node.outputs, producerOf(this.run.runId, node, ReuseKind.CACHE));
      if (this.stopped) return;
      this.settle(node, NodeState.SUCCEEDED, "");
      return;
    }
    if (outcome.transient && mayRetry(planned.node.retry, node.attempt)) {
      const delay = retryDelayMs(planned.node.retry, node.attempt);
      node.state = NodeState.RETRYING;
      node.error = outcome.reason;
      this.emitNode(node, `${outcome.reason}; retrying in ${delay / 1000} s`);
      this.retryLater(id, delay, () => this.launch(id));
      return;
    }
    this.settle(node, NodeState.FAILED, outcome.reason);
  }

  private retryLater(key: string, delayMs: number, retry: () => void): void {
    this.retryTimers.set(
      key,
      setTimeout(() => {
        this.retryTimers.delete(key);
        if (!this.stopped) retry();
      }, delayMs),
    );
  }

  private markRunRunning(): void {
    if (this.run.state !== RunState.PENDING) return;
    this.run.state = RunState.RUNNING;
    this.emit("", { case: "runState", value: create(RunStateChangedSchema, { state: RunState.RUNNING }) });
  }

  /**
   * Runs one attempt of a node (or of one item of a mapped node) through the executor with `values`
   * as its inputs, handing its agent events to `record`; undefined when the run stopped meanwhile.
   */
  private async execute(
    node: NodeRun,
    attempt: number,
    values: Record<string, PinValue | undefined>,
    controller: AbortController,
    record: (event: AgentEvent) => void,
  ): Promise<ExecutionOutcome | undefined> {
    const id = node.nodeId;
    const planned = this.plan.nodes.get(id);
    if (!planned) return undefined;
    const { manifest } = planned;
    const timeoutMs = durationToMs(planned.node.timeout) ?? this.deps.config.defaultNodeTimeoutMs;
    const runToken = this.deps.runTokens.mint(
      { runId: this.run.runId, nodeId: id, attempt, user: this.run.owner, workspace: this.run.workspace },
      Math.ceil(timeoutMs / 1000) + tokenMarginSeconds,
    );
    const timer = setTimeout(() => controller.abort("timeout"), timeoutMs);
    let outcome: ExecutionOutcome | undefined;
    let outputStreams: Record<string, StreamRef> = {};
    try {
      outputStreams = await this.openOutputStreams(node, runToken);
      const inputs = await this.resolveInputs(id, values, runToken);
      const inputBytes = Object.values(inputs).reduce(
        (sum, v) => sum + (v.value.case === "media" ? Number(v.value.value.sizeBytes) : v.value.case === "inlineBytes" ? v.value.value.byteLength : 0),
        0,
      );
      const task = {
        runId: this.run.runId,
        nodeId: id,
        attempt,
        workspace: this.run.workspace,
        user: this.run.owner,
        agent: manifest,
        params: planned.node.params ?? {},
        inputs,
        outputStreams,
        resources: calculateResources(manifest, inputBytes),
        timeoutMs,
        runToken,
      };
      for await (const event of this.deps.executor.execute(task, controller.signal)) {
        if (controller.signal.aborted) break;
        if (event.kind === "agent") record(event.event);
        else outcome = event;
      }
    } catch (err) {
      outcome = failureOf(err);
    } finally {
      clearTimeout(timer);
    }
    if (this.stopped) {
      // Cancelled: nothing will write to these streams again. A replica that lost the run to another
      // leaves them, since the run goes on there.
      if (!this.abandoned) await this.endStreamsLeftOpen(node, outputStreams, runToken, `run "${this.run.runId}" was cancelled`);
      return undefined;
    }
    if (controller.signal.aborted && controller.signal.reason === "timeout") {
      outcome = { kind: "failed", reason: `timed out after ${timeoutMs / 1000} s`, transient: false };
    }
    outcome ??= { kind: "failed", reason: "the executor ended without an outcome", transient: false };
    await this.endStreamsLeftOpen(
      node,
      outputStreams,
      runToken,
      outcome.kind === "succeeded" ? "" : `node "${id}" attempt ${attempt} failed: ${outcome.reason}`,
    );
    return this.stopped ? undefined : outcome;
  }

  /**
   * Starts a mapped node: splits the list bound to its mapped pin into items (a value that is not such
   * a list fails the node) and runs them, at most `concurrency` at once. Items that already succeeded
   * (kept by a retry, or before another replica took the run over) are not run again.
   */
  private startMap(id: string): void {
    const node = this.nodes.get(id);
    const planned = this.plan.nodes.get(id);
    const spec = planned?.node.map;
    if (!node || !planned || !spec) return;
    const pin = planned.manifest.inputs.find((p) => p.name === spec.pin);
    const list = this.inputValues(id)[spec.pin];
    const values = pin && list ? listItems(list, pin.type) : `mapped input "${spec.pin}" has no value`;
    if (typeof values === "string") {
      this.settle(node, NodeState.FAILED, `cannot map over ${id}.${spec.pin}: ${values}`);
      return;
    }
    const firstStart = node.attempt === 0;
    if (node.map?.total !== values.length) {
      node.map = create(MapProgressSchema, {
        total: values.length,
        items: values.map((_, index) => create(MapItemSchema, { index, state: NodeState.PENDING })),
      });
    }
    const items = node.map.items;
    const run: MapRun = { values, queue: [], active: new Set(), waiting: new Set(), stopping: false };
    for (const item of items) {
      if (item.state !== NodeState.SUCCEEDED) run.queue.push(item.index);
    }
    this.maps.set(id, run);
    node.state = NodeState.RUNNING;
    node.startedAt = timestampNow();
    node.endedAt = undefined;
    node.error = "";
    node.outputs = {};
    node.progressPercent = mapPercent(node);
    const kept = items.length - run.queue.length;
    this.emitNode(
      node,
      `mapping over ${items.length} items of ${spec.pin}, at most ${mapConcurrency(spec)} at once` + (kept > 0 ? `; ${kept} already succeeded` : ""),
    );
    if (firstStart) for (const item of items) if (item.reused) this.emitItem(node, item, reuseReason(item.reused));
    this.fillMap(id);
  }

  /** Starts queued items up to the node's concurrency; ends the node once no item is left to run. */
  private fillMap(id: string): void {
    const run = this.maps.get(id);
    const spec = this.plan.nodes.get(id)?.node.map;
    if (!run || !spec || this.stopped) return;
    while (!run.stopping && run.active.size < mapConcurrency(spec) && run.queue.length > 0) {
      const index = run.queue.shift() as number;
      run.active.add(index);
      void this.runItem(id, index, run);
    }
    if (run.active.size === 0 && run.waiting.size === 0 && (run.queue.length === 0 || run.stopping)) this.finishMap(id);
  }

  private async runItem(id: string, index: number, run: MapRun): Promise<void> {
    const node = this.nodes.get(id);
    const planned = this.plan.nodes.get(id);
    const item = node?.map?.items[index];
    const spec = planned?.node.map;
    if (!node || !planned || !item || !spec) return;
    const values = { ...this.inputValues(id), [spec.pin]: run.values[index] };
    const cacheKey = this.cache.read || this.cache.write ? nodeCacheKey(planned, values) : undefined;
    const cached = cacheKey && item.tries === 0 ? await this.cachedOutputs(id, cacheKey) : undefined;
    if (cached) {
      item.reused = cached;
      this.settleItem(node, item, NodeState.SUCCEEDED, reuseReason(item.reused), cached.outputs);
    } else {
      await this.deps.slots.acquire();
      try {
        if (run.stopping) this.settleItem(node, item, NodeState.CANCELLED, failFastCancel);
        else if (!this.stopped) await this.itemAttempt(node, item, values, this.cache.write ? cacheKey : undefined);
      } finally {
        this.deps.slots.release();
      }
    }
    run.active.delete(index);
    this.fillMap(id);
    this.pump();
  }

  private async itemAttempt(node: NodeRun, item: MapItem, values: Record<string, PinValue | undefined>, cacheKey: string | undefined): Promise<void> {
    const id = node.nodeId;
    const key = itemKey(id, item.index);
    const controller = new AbortController();
    this.running.set(key, controller);
    node.attempt += 1;
    item.attempt = node.attempt;
    item.tries += 1;
    item.state = NodeState.RUNNING;
    item.error = "";
    item.outputs = {};
    this.markRunRunning();
    this.emitItem(node, item, "");
    let outcome: ExecutionOutcome | undefined;
    try {
      outcome = await this.execute(node, item.attempt, values, controller, (event) => this.recordItemEvent(node, item, event));
    } finally {
      this.running.delete(key);
    }
    if (!outcome || this.stopped) return;
    if (controller.signal.reason === failFastReason) {
      this.settleItem(node, item, NodeState.CANCELLED, failFastCancel);
      return;
    }
    if (outcome.kind === "succeeded") {
      const outputs = { ...item.outputs, ...outcome.outputs };
      if (cacheKey) await this.remember(cacheKey, id, outputs, create(NodeReuseSchema, { kind: ReuseKind.CACHE, runId: this.run.runId, nodeId: id }));
      if (!this.stopped) this.settleItem(node, item, NodeState.SUCCEEDED, "", outputs);
      return;
    }
    const retry = this.plan.nodes.get(id)?.node.retry;
    const run = this.maps.get(id);
    if (outcome.transient && mayRetry(retry, item.tries) && run && !run.stopping) {
      const delay = retryDelayMs(retry, item.tries);
      item.state = NodeState.RETRYING;
      item.error = outcome.reason;
      this.emitItem(node, item, `${outcome.reason}; retrying in ${delay / 1000} s`);
      run.waiting.add(item.index);
      this.retryLater(key, delay, () => {
        run.waiting.delete(item.index);
        run.queue.push(item.index);
        run.queue.sort((a, b) => a - b);
        this.fillMap(id);
      });
      return;
    }
    this.settleItem(node, item, NodeState.FAILED, outcome.reason);
    const spec = this.plan.nodes.get(id)?.node.map;
    if (run && spec && failsFast(spec) && !run.stopping) this.stopMap(node, run);
  }

  /** Fail fast: stops the items in flight and cancels those waiting. */
  private stopMap(node: NodeRun, run: MapRun): void {
    run.stopping = true;
    for (const index of [...run.queue, ...run.waiting]) {
      const item = node.map?.items[index];
      const key = itemKey(node.nodeId, index);
      clearTimeout(this.retryTimers.get(key));
      this.retryTimers.delete(key);
      if (item) this.settleItem(node, item, NodeState.CANCELLED, failFastCancel);
    }
    run.queue.length = 0;
    run.waiting.clear();
    for (const index of run.active) this.running.get(itemKey(node.nodeId, index))?.abort(failFastReason);
  }

  private settleItem(node: NodeRun, item: MapItem, state: NodeState, reason: string, outputs: Record<string, PinValue> = {}): void {
    item.state = state;
    item.error = state === NodeState.SUCCEEDED ? "" : reason;
    for (const [pin, value] of Object.entries(outputs)) this.recordItemOutput(node, item, pin, value);
    node.progressPercent = mapPercent(node);
    this.emitItem(node, item, reason);
  }

  /** Ends a mapped node once no item is left: succeeded with its outputs collected in item order, or failed naming the items that failed. */
  private finishMap(id: string): void {
    const node = this.nodes.get(id);
    const planned = this.plan.nodes.get(id);
    if (!node?.map || !planned || node.state !== NodeState.RUNNING) return;
    this.maps.delete(id);
    const items = node.map.items;
    const failed = items.filter((item) => item.state === NodeState.FAILED);
    if (failed.length > 0) {
      const first = failed[0] as MapItem;
      const cancelled = items.filter((item) => item.state === NodeState.CANCELLED).length;
      const reason =
        `${failed.length === 1 ? "item" : "items"} ${failed.map((item) => item.index).join(", ")} of ${items.length} failed` +
        (cancelled > 0 ? `, ${cancelled} cancelled` : "") +
        `; item ${first.index}: ${first.error}`;
      this.settle(node, NodeState.FAILED, reason);
      return;
    }
    for (const pin of planned.manifest.outputs) {
      this.recordOutput(node, pin.name, collectList(items.map((item) => item.outputs[pin.name])));
    }
    this.settle(node, NodeState.SUCCEEDED, "");
  }

  /** Ends what the attempt's agent did not, so followers of its streams hear the attempt is over. */
  private async endStreamsLeftOpen(node: NodeRun, streams: Record<string, StreamRef>, runToken: string, errorMessage: string): Promise<void> {
    for (const [pin, ref] of Object.entries(streams)) {
      try {
        await this.deps.streams?.endLeftOpen(ref, runToken, errorMessage);
      } catch (err) {
        // The stream service is down: its followers hear of it from there; the run goes on.
        this.recordAgentEvent(node, logEvent(LogLevel.WARN, `could not end output stream ${pin} (${ref.streamId}) left open: ${String(err)}`));
      }
    }
  }

  /** Creates the node's stream outputs up front and publishes them, so stream consumers start now. */
  private async openOutputStreams(node: NodeRun, runToken: string): Promise<Record<string, StreamRef>> {
    const pins = this.plan.nodes.get(node.nodeId)?.manifest.outputs.filter((p) => p.type === PinType.STREAM) ?? [];
    if (pins.length === 0) return {};
    if (!this.deps.streams) throw new EdgeError(`node "${node.nodeId}" has stream outputs but no stream service is configured`);
    const refs: Record<string, StreamRef> = {};
    for (const pin of pins) {
      const consumers = streamConsumers(this.plan, node.nodeId, pin.name);
      const ref = await this.deps.streams.open({ runId: this.run.runId, nodeId: node.nodeId, pin, consumers }, runToken);
      refs[pin.name] = ref;
      this.recordOutput(node, pin.name, create(PinValueSchema, { value: { case: "stream", value: ref } }));
    }
    this.pump();
    return refs;
  }

  /** A node's input values by pin as they stand, before the edges convert them: what its cache key is made of. */
  private inputValues(id: string): Record<string, PinValue | undefined> {
    const values: Record<string, PinValue | undefined> = {};
    for (const [pinName, source] of this.plan.nodes.get(id)?.inputs ?? []) {
      if (source.kind === "submitted") {
        values[pinName] = this.run.inputs[source.key];
        continue;
      }
      // Several edges only into a node joining any branch: the first one taken feeds the pin.
      const taken = source.edges.find((edge) => this.edgeStatus(edge).kind === "taken");
      values[pinName] = taken && this.nodes.get(taken.node)?.outputs[taken.pin];
    }
    return values;
  }

  private async resolveInputs(id: string, values: Record<string, PinValue | undefined>, runToken: string): Promise<Record<string, PinValue>> {
    const planned = this.plan.nodes.get(id);
    const inputs: Record<string, PinValue> = {};
    if (!planned) return inputs;
    const ctx = { workspace: this.run.workspace, runToken, inlineThresholdBytes: this.deps.config.inlineThresholdBytes, media: this.deps.media };
    for (const [pinName, value] of Object.entries(values)) {
      const pin = planned.manifest.inputs.find((p) => p.name === pinName);
      if (value && pin) inputs[pinName] = await processEdge(value, pin, ctx);
    }
    return inputs;
  }

  private recordAgentEvent(node: NodeRun, event: AgentEvent): void {
    switch (event.event.case) {
      case "heartbeat":
        // Liveness only; persisting every heartbeat would bury the events watchers care about.
        return;
      case "progress":
        node.progressPercent = event.event.value.percent;
        break;
      case "output":
        if (event.event.value.value) {
          this.recordOutput(node, event.event.value.pin, event.event.value.value, event);
          return;
        }
        break;
      default:
        break;
    }
    this.emit(node.nodeId, { case: "agent", value: event });
  }

  /** Like recordAgentEvent, for an item's attempt: its events carry the item's index, its outputs stay the item's. */
  private recordItemEvent(node: NodeRun, item: MapItem, event: AgentEvent): void {
    if (event.event.case === "heartbeat") return;
    if (event.event.case === "output" && event.event.value.value) {
      this.recordItemOutput(node, item, event.event.value.pin, event.event.value.value, event);
      return;
    }
    this.emit(node.nodeId, { case: "agent", value: event }, item.index);
  }

  private recordItemOutput(node: NodeRun, item: MapItem, pin: string, value: PinValue, event: AgentEvent = outputEvent(pin, value)): void {
    if (pin in item.outputs) return;
    item.outputs[pin] = value;
    this.emit(node.nodeId, { case: "agent", value: event }, item.index);
  }

  /**
   * Keeps the first value an output pin gets in this attempt and tells watchers once: the same pin
   * comes back from the sidecar's live report, the final result repeating it, and (for streams) the
   * StreamRef opened before the agent started.
   */
  private recordOutput(node: NodeRun, pin: string, value: PinValue, event: AgentEvent = outputEvent(pin, value)): void {
    if (pin in node.outputs) return;
    node.outputs[pin] = value;
    this.emit(node.nodeId, { case: "agent", value: event });
    if (value.value.case === "stream") for (const next of this.plan.nodes.get(node.nodeId)?.downstream ?? []) this.candidates.add(next);
  }

  /** Puts a node in a final state and lets its downstream react. */
  private settle(node: NodeRun, state: NodeState, reason: string): void {
    node.state = state;
    node.endedAt = timestampNow();
    // A success's reason (where reused outputs came from) is no error.
    node.error = state === NodeState.SUCCEEDED ? "" : reason;
    this.emitNode(node, reason);
    for (const next of this.plan.nodes.get(node.nodeId)?.downstream ?? []) this.candidates.add(next);
  }

  private finishIfDone(): void {
    if (this.stopped || this.running.size > 0 || this.launching.size > 0 || this.retryTimers.size > 0) return;
    const nodes = [...this.nodes.values()];
    if (!nodes.every((n) => finalNodeStates.has(n.state))) return;
    const failed = this.plan.order.map((id) => this.nodes.get(id)).find((n) => n?.state === NodeState.FAILED);
    if (failed) {
      this.finish(RunState.FAILED, `node "${failed.nodeId}" failed: ${failed.error}`);
      return;
    }
    for (const node of nodes) {
      for (const [pin, value] of Object.entries(node.outputs)) {
        if (!this.consumed.has(`${node.nodeId}.${pin}`)) this.run.outputs[`${node.nodeId}.${pin}`] = value;
      }
    }
    this.finish(RunState.SUCCEEDED, "");
  }

  private finish(state: RunState, reason: string): void {
    this.run.state = state;
    this.run.error = reason;
    this.run.endedAt = timestampNow();
    this.emit("", { case: "runState", value: create(RunStateChangedSchema, { state, reason }) });
    this.stopped = true;
    this.stopAll(state === RunState.CANCELLED ? "cancelled" : "finished");
    void this.flush()
      .then(() => this.deps.store.releaseLease(this.run.runId, this.deps.owner))
      // A lease left behind lapses by itself within its TTL, and nobody adopts a finished run.
      .catch((err: unknown) =>
        console.warn(`orchestrator: run ${this.run.runId} finished, but its lease could not be released (${String(err)}); it lapses by itself`),
      )
      .finally(() => this.deps.onStopped(this.run.runId));
  }

  private stopAll(reason: string): void {
    for (const controller of this.running.values()) controller.abort(reason);
    for (const timer of this.retryTimers.values()) clearTimeout(timer);
    this.retryTimers.clear();
  }

  private emitNode(node: NodeRun, reason: string): void {
    this.deps.metrics?.recordNodeState(node);
    this.emit(node.nodeId, {
      case: "nodeState",
      value: create(NodeStateChangedSchema, { nodeId: node.nodeId, state: node.state, attempt: node.attempt, reason, reused: node.reused }),
    });
  }

  private emitItem(node: NodeRun, item: MapItem, reason: string): void {
    const items = node.map?.items ?? [];
    const count = (state: NodeState) => items.filter((i) => i.state === state).length;
    this.emit(node.nodeId, {
      case: "mapItem",
      value: create(MapItemChangedSchema, {
        nodeId: node.nodeId,
        index: item.index,
        state: item.state,
        attempt: item.attempt,
        reason,
        reused: item.reused,
        succeeded: count(NodeState.SUCCEEDED),
        failed: count(NodeState.FAILED),
        total: items.length,
      }),
    });
  }

  private emit(nodeId: string, event: RunEvent["event"], itemIndex?: number): void {
    this.run.lastEventSeq += 1n;
    this.pending.push(create(RunEventSchema, { seq: this.run.lastEventSeq, time: timestampNow(), runId: this.run.runId, nodeId, event, itemIndex }));
    void this.flush();
  }

  /**
   * The events the store does not hold yet. A write whose reply was lost to a failing store may have
   * landed; resending it would be refused as out of order and cost this replica the run.
   */
  private async notYetStored(events: RunEvent[]): Promise<RunEvent[]> {
    const first = events[0];
    if (!first) return events;
    try {
      const stored = await this.deps.store.events(this.run.runId, first.seq - 1n, events.length);
      const storedUpTo = stored.at(-1)?.seq ?? first.seq - 1n;
      return events.filter((event) => event.seq > storedUpTo);
    } catch {
      // Still down: the next write attempt fails as well and brings us back here.
      return events;
    }
  }

  /** Writes pending events in order, batching whatever accumulates while a write is in flight. */
  private flush(): Promise<void> {
    this.flushing ??= (async () => {
      // Let the current burst of synchronous changes land in one write.
      await new Promise<void>((resolve) => setImmediate(resolve));
      while (this.pending.length > 0) {
        const batch = this.pending;
        this.pending = [];
        let ok: boolean;
        try {
          ok = await this.deps.store.append(this.run.runId, this.deps.owner, batch, this.run);
        } catch {
          // The store is down: keep the events, in order, and write them once it is back (or stop
          // when the lease turns out lost).
          this.pending = [...batch, ...this.pending];
          await new Promise((resolve) => setTimeout(resolve, storeRetryMs));
          if (this.abandoned) return;
          this.pending = await this.notYetStored(this.pending);
          continue;
        }
        if (!ok) {
          this.abandon();
          return;
        }
      }
    })().finally(() => {
      this.flushing = undefined;
      if (this.pending.length > 0) void this.flush();
    });
    return this.flushing;
  }
}

/** The agent event announcing an output value, as the orchestrator records one an agent did not report itself. */
export function outputEvent(pin: string, value: PinValue, time: Timestamp = timestampNow()): AgentEvent {
  return create(AgentEventSchema, { time, event: { case: "output", value: create(OutputEventSchema, { pin, value }) } });
}

/** The node, or the item of a mapped node, whose attempt `attempt` is running; undefined when that attempt is not current. */
export function runningAttempt(node: NodeRun, attempt: number): NodeRun | MapItem | undefined {
  if (node.state !== NodeState.RUNNING) return undefined;
  if (!node.map) return node.attempt === attempt ? node : undefined;
  return node.map.items.find((item) => item.attempt === attempt && item.state === NodeState.RUNNING);
}

/** Why fail fast aborts an item's attempt. */
const failFastReason = "fail fast";
/** What an item fail fast stopped says. */
const failFastCancel = "cancelled: another item failed (fail fast)";

/** Key of an item's attempt among the driver's running attempts and retry timers (node ids cannot hold `#`). */
function itemKey(nodeId: string, index: number): string {
  return `${nodeId}#${index}`;
}

/** How far a mapped node is: the share of its items that ended. */
function mapPercent(node: NodeRun): number {
  const items = node.map?.items ?? [];
  if (items.length === 0) return 100;
  return (100 * items.filter((item) => finalNodeStates.has(item.state)).length) / items.length;
}

/** An attempt that threw: bad values along an edge are final; an unreachable service is worth a retry. */
function failureOf(err: unknown): ExecutionOutcome {
  if (err instanceof EdgeError) return { kind: "failed", reason: err.message, transient: false };
  return {
    kind: "failed",
    reason: `attempt error: ${err instanceof Error ? err.message : String(err)}`,
    // Attempts are retried under the node's backoff policy, so a limit that may lift counts as well.
    transient: isRetryable(err, { limits: true }),
  };
}
