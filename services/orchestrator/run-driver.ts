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
import { edgeNotTaken } from "./edge-condition.js";
import { EdgeError, processEdge } from "./edge-processor.js";
import type { ExecutionOutcome, Executor } from "./executor.js";
import { durationToMs } from "./flow-parse.js";
import type { FlowPlan } from "./flow-validate.js";
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
      for (const source of planned.inputs.values()) if (source.kind === "edge") this.consumed.add(`${source.node}.${source.pin}`);
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
    if (this.stopped || !node || node.attempt !== report.attempt || node.state !== NodeState.RUNNING) return false;
    let events = report.events;
    if (report.reporterId !== "") {
      const key = `${report.nodeId}\u0000${report.attempt}\u0000${report.reporterId}`;
      const through = this.reportedThrough.get(key) ?? 0n;
      const first = report.firstEventSeq > 0n ? report.firstEventSeq : 1n;
      events = events.slice(Number(through >= first ? through - first + 1n : 0n));
      if (events.length > 0) this.reportedThrough.set(key, first + BigInt(report.events.length) - 1n);
    }
    for (const event of events) this.recordAgentEvent(node, event);
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
    for (const [pinName, source] of planned.inputs) {
      if (source.kind === "submitted") continue;
      const upstream = this.nodes.get(source.node);
      const upstreamPin = this.plan.nodes.get(source.node)?.manifest.outputs.find((p) => p.name === source.pin);
      if (!upstream || !upstreamPin) return { kind: "fail", reason: `upstream ${source.node}.${source.pin} is not in the plan` };
      if (upstream.state === NodeState.FAILED || upstream.state === NodeState.SKIPPED || upstream.state === NodeState.CANCELLED) {
        return { kind: "skip", reason: `upstream node "${source.node}" ${upstream.state === NodeState.FAILED ? "failed" : "did not run"}` };
      }
      const value = upstream.outputs[source.pin];
      if (upstreamPin.type === PinType.STREAM) {
        if (value) continue;
        if (upstream.state === NodeState.SUCCEEDED) return { kind: "fail", reason: `upstream ${source.node} finished without opening stream ${source.pin}` };
        return { kind: "wait" };
      }
      if (upstream.state !== NodeState.SUCCEEDED) return { kind: "wait" };
      const notTaken = source.when && edgeNotTaken(source.when, upstream.outputs, source.node, source.pin);
      if (notTaken) return { kind: "skip", reason: notTaken };
      const required = planned.manifest.inputs.find((p) => p.name === pinName)?.required ?? false;
      if (!value && required) return { kind: "fail", reason: `upstream ${source.node} produced no value on "${source.pin}" for required input "${pinName}"` };
    }
    return { kind: "ready" };
  }

  private launch(id: string): void {
    this.launching.add(id);
    void (async () => {
      const planned = this.plan.nodes.get(id);
      const cacheKey = planned && (this.cache.read || this.cache.write) ? nodeCacheKey(planned, this.inputValues(id)) : undefined;
      if (cacheKey && (await this.reuseCached(id, cacheKey))) {
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
   * Settles a node with the outputs the cache holds for its key, without starting its agent; false
   * (run it) on a miss, on a retry attempt, when the run does not read the cache, or when a stored
   * object an entry names is gone (the entry outlived it). A store that fails to answer is a miss too:
   * running the agent is always correct, only slower.
   */
  private async reuseCached(id: string, key: string): Promise<boolean> {
    const node = this.nodes.get(id);
    if (!node || node.attempt > 0 || !this.cache.read) return false;
    const entry = await this.deps.store.cacheGet(this.run.workspace, key).catch(() => undefined);
    if (!entry?.reused || !(await this.mediaStillStored(id, entry.outputs)) || this.stopped) return false;
    node.reused = create(NodeReuseSchema, { ...entry.reused, kind: ReuseKind.CACHE });
    for (const [pin, value] of Object.entries(entry.outputs)) this.recordOutput(node, pin, value);
    node.progressPercent = 100;
    this.settle(node, NodeState.SUCCEEDED, reuseReason(node.reused));
    return true;
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

  /** Stores a node's outputs under its key, naming this run and node as where they came from; a store that fails only costs the reuse. */
  private async remember(node: NodeRun, key: string): Promise<void> {
    const entry = create(NodeRunSchema, { nodeId: node.nodeId, outputs: node.outputs, reused: producerOf(this.run.runId, node, ReuseKind.CACHE) });
    await this.deps.store.cachePut(this.run.workspace, key, entry, this.deps.config.cacheTtlSeconds * 1000).catch(() => undefined);
  }

  private async attempt(id: string, controller: AbortController, cacheKey: string | undefined): Promise<void> {
    const node = this.nodes.get(id);
    const planned = this.plan.nodes.get(id);
    if (!node || !planned) return;
    const { manifest } = planned;
    node.attempt += 1;
    node.state = NodeState.RUNNING;
    node.startedAt = timestampNow();
    node.endedAt = undefined;
    node.error = "";
    node.progressPercent = 0;
    // Each attempt reports its own outputs; a failed attempt's values must not stand in for this one's.
    node.outputs = {};
    if (this.run.state === RunState.PENDING) {
      this.run.state = RunState.RUNNING;
      this.emit("", { case: "runState", value: create(RunStateChangedSchema, { state: RunState.RUNNING }) });
    }
    this.emitNode(node, "");
    const timeoutMs = durationToMs(planned.node.timeout) ?? this.deps.config.defaultNodeTimeoutMs;
    const runToken = this.deps.runTokens.mint(
      { runId: this.run.runId, nodeId: id, attempt: node.attempt, user: this.run.owner, workspace: this.run.workspace },
      Math.ceil(timeoutMs / 1000) + tokenMarginSeconds,
    );
    const timer = setTimeout(() => controller.abort("timeout"), timeoutMs);
    let outcome: ExecutionOutcome | undefined;
    let outputStreams: Record<string, StreamRef> = {};
    try {
      outputStreams = await this.openOutputStreams(node, runToken);
      const inputs = await this.resolveInputs(id, runToken);
      const inputBytes = Object.values(inputs).reduce(
        (sum, v) => sum + (v.value.case === "media" ? Number(v.value.value.sizeBytes) : v.value.case === "inlineBytes" ? v.value.value.byteLength : 0),
        0,
      );
      const task = {
        runId: this.run.runId,
        nodeId: id,
        attempt: node.attempt,
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
        if (event.kind === "agent") this.recordAgentEvent(node, event.event);
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
      return;
    }
    if (controller.signal.aborted && controller.signal.reason === "timeout") {
      outcome = { kind: "failed", reason: `timed out after ${timeoutMs / 1000} s`, transient: false };
    }
    outcome ??= { kind: "failed", reason: "the executor ended without an outcome", transient: false };
    await this.endStreamsLeftOpen(
      node,
      outputStreams,
      runToken,
      outcome.kind === "succeeded" ? "" : `node "${id}" attempt ${node.attempt} failed: ${outcome.reason}`,
    );
    if (this.stopped) return;
    if (outcome.kind === "succeeded") {
      for (const [pin, value] of Object.entries(outcome.outputs)) this.recordOutput(node, pin, value);
      node.progressPercent = 100;
      if (cacheKey) await this.remember(node, cacheKey);
      if (this.stopped) return;
      this.settle(node, NodeState.SUCCEEDED, "");
      return;
    }
    if (outcome.transient && mayRetry(planned.node.retry, node.attempt)) {
      const delay = retryDelayMs(planned.node.retry, node.attempt);
      node.state = NodeState.RETRYING;
      node.error = outcome.reason;
      this.emitNode(node, `${outcome.reason}; retrying in ${delay / 1000} s`);
      this.retryTimers.set(
        id,
        setTimeout(() => {
          this.retryTimers.delete(id);
          if (!this.stopped) this.launch(id);
        }, delay),
      );
      return;
    }
    this.settle(node, NodeState.FAILED, outcome.reason);
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
      values[pinName] = source.kind === "submitted" ? this.run.inputs[source.key] : this.nodes.get(source.node)?.outputs[source.pin];
    }
    return values;
  }

  private async resolveInputs(id: string, runToken: string): Promise<Record<string, PinValue>> {
    const planned = this.plan.nodes.get(id);
    const inputs: Record<string, PinValue> = {};
    if (!planned) return inputs;
    const ctx = { workspace: this.run.workspace, runToken, inlineThresholdBytes: this.deps.config.inlineThresholdBytes, media: this.deps.media };
    for (const [pinName, value] of Object.entries(this.inputValues(id))) {
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

  private emit(nodeId: string, event: RunEvent["event"]): void {
    this.run.lastEventSeq += 1n;
    this.pending.push(create(RunEventSchema, { seq: this.run.lastEventSeq, time: timestampNow(), runId: this.run.runId, nodeId, event }));
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
