import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import type { AgentManifest } from "../../gen/mentatlab/v1/registry_pb.js";
import { type Run, RunEventSchema, RunState, RunStateChangedSchema } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { type AgentCatalog, isResolveFailure } from "../registry/index.js";
import { describeViolations } from "../registry/violations.js";
import { checkFlow, type FlowPlan } from "./flow-validate.js";
import { RunDriver, type RunDriverDeps } from "./run-driver.js";
import { isFinalRunState } from "./run-store.js";
import { Semaphore } from "./semaphore.js";

export type RunEngineDeps = Omit<RunDriverDeps, "owner" | "slots" | "onStopped"> & {
  readonly catalog: AgentCatalog;
  /** Look for unfinished runs no replica holds and finish them (stores shared between processes). */
  readonly recover: boolean;
};

/**
 * Owns the runs this replica drives: takes a lease on each, renews the leases, adopts runs whose
 * owner stopped renewing (another replica crashed), and routes cancels and sidecar reports to them.
 */
export class RunEngine {
  readonly owner = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private readonly drivers = new Map<string, RunDriver>();
  private readonly adopting = new Set<string>();
  private readonly slots: Semaphore;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly unsubscribe: (() => void)[];
  private closed = false;

  constructor(private readonly deps: RunEngineDeps) {
    this.slots = new Semaphore(deps.config.maxConcurrentNodes);
    this.unsubscribe = [
      // Redis failed between announcing a cancel and this read of its reason: the request stays stored,
      // and is applied when the run is next adopted or cancelled again; crashing the process would not help.
      deps.store.onCancelRequested((runId) => void this.applyCancel(runId).catch(() => undefined)),
      // Reports a sidecar sent to another replica; stale or unknown ones are dropped by the driver.
      deps.store.onReport((report) => void this.drivers.get(report.runId)?.report(report)),
    ];
    // While the store is down renewals and recovery fail and are tried again on the next tick; a lease
    // that lapsed meanwhile is found lost (and its run abandoned) by the first renewal that gets through.
    const untilNextTick = (): undefined => undefined;
    this.timers.push(setInterval(() => void this.renewLeases().catch(untilNextTick), Math.max(100, deps.config.leaseTtlMs / 3)));
    if (deps.recover) this.timers.push(setInterval(() => void this.recover().catch(untilNextTick), deps.config.recoveryIntervalMs));
    for (const timer of this.timers) timer.unref();
  }

  /** Starts driving a run just created in the store. */
  async launch(run: Run, plan: FlowPlan): Promise<void> {
    if (!(await this.deps.store.acquireLease(run.runId, this.owner, this.deps.config.leaseTtlMs))) return;
    this.startDriver(run, plan, true);
  }

  /** Takes over an unfinished run if no replica holds it; true when this replica now drives it. */
  async adopt(runId: string): Promise<boolean> {
    if (this.drivers.has(runId)) return true;
    if (this.closed || this.adopting.has(runId)) return false;
    this.adopting.add(runId);
    try {
      if (!(await this.deps.store.acquireLease(runId, this.owner, this.deps.config.leaseTtlMs))) return false;
      const run = await this.deps.store.get(runId);
      if (!run || isFinalRunState(run.state)) {
        await this.deps.store.releaseLease(runId, this.owner);
        return false;
      }
      const plan = await this.planOf(run);
      if (typeof plan === "string") {
        await this.failUnplannable(run, plan);
        return false;
      }
      // A run adopted in order to be cancelled must not start anything first.
      const cancelReason = await this.deps.store.cancelRequest(runId);
      const driver = this.startDriver(run, plan, cancelReason === undefined);
      if (cancelReason !== undefined) driver.cancel(cancelReason || "cancelled");
      return true;
    } finally {
      this.adopting.delete(runId);
    }
  }

  /** Cancels a run wherever it is driven; a run nobody drives is adopted here to be cancelled. */
  async cancel(runId: string, reason: string): Promise<void> {
    await this.deps.store.requestCancel(runId, reason);
    if (!this.drivers.has(runId)) await this.adopt(runId);
  }

  driverOf(runId: string): RunDriver | undefined {
    return this.drivers.get(runId);
  }

  /** Stops driving (agents are stopped) and frees the leases so another replica can take over at once. */
  async close(): Promise<void> {
    this.closed = true;
    for (const stop of this.unsubscribe) stop();
    for (const timer of this.timers) clearInterval(timer);
    const runIds = [...this.drivers.keys()];
    for (const driver of [...this.drivers.values()]) driver.abandon();
    // With the store down the leases cannot be freed now; they lapse within their TTL instead.
    await Promise.allSettled(runIds.map((id) => this.deps.store.releaseLease(id, this.owner)));
  }

  /** Registers a driver for a run this replica holds; `start` says whether to start scheduling now. */
  private startDriver(run: Run, plan: FlowPlan, start: boolean): RunDriver {
    const driver = new RunDriver(run, plan, { ...this.deps, owner: this.owner, slots: this.slots, onStopped: (id) => this.drivers.delete(id) });
    this.drivers.set(run.runId, driver);
    if (start) driver.start();
    return driver;
  }

  private async applyCancel(runId: string): Promise<void> {
    const driver = this.drivers.get(runId);
    if (!driver) return;
    const reason = await this.deps.store.cancelRequest(runId);
    if (reason !== undefined) driver.cancel(reason || "cancelled");
  }

  private async renewLeases(): Promise<void> {
    for (const [runId, driver] of this.drivers) {
      if (!(await this.deps.store.acquireLease(runId, this.owner, this.deps.config.leaseTtlMs))) driver.abandon();
    }
  }

  private async recover(): Promise<void> {
    if (this.closed) return;
    for (const runId of await this.deps.store.unfinished()) {
      if (!this.drivers.has(runId)) await this.adopt(runId);
    }
  }

  /** The plan of a stored run, with the agent versions it started with; a string says why there is none. */
  private async planOf(run: Run): Promise<FlowPlan | string> {
    const pinned = new Map<string, AgentManifest>();
    for (const node of run.nodes) {
      const at = node.agent.lastIndexOf("@");
      const manifest = await this.deps.catalog.resolve(node.agent.slice(0, at), node.agent.slice(at + 1));
      if (isResolveFailure(manifest)) return `cannot resume node "${node.nodeId}": ${manifest.message}`;
      pinned.set(node.nodeId, manifest);
    }
    if (!run.flow) return "the stored run has no flow";
    const check = await checkFlow(run.flow, run.inputs, this.deps.catalog, pinned);
    return check.plan ?? `cannot resume: ${describeViolations(check.violations)}`;
  }

  private async failUnplannable(run: Run, reason: string): Promise<void> {
    run.state = RunState.FAILED;
    run.error = reason;
    run.endedAt = timestampNow();
    run.lastEventSeq += 1n;
    const event = create(RunEventSchema, {
      seq: run.lastEventSeq,
      time: timestampNow(),
      runId: run.runId,
      event: { case: "runState", value: create(RunStateChangedSchema, { state: RunState.FAILED, reason }) },
    });
    await this.deps.store.append(run.runId, this.owner, [event], run);
    await this.deps.store.releaseLease(run.runId, this.owner);
  }
}
