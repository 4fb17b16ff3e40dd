import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import type { PinValue, Violation } from "../../gen/mentatlab/v1/common_pb.js";
import {
  type Flow,
  type FlowSource,
  type NodeRun,
  NodeRunSchema,
  NodeStateChangedSchema,
  RunStateChangedSchema,
  NodeState,
  OrchestratorService,
  type Run,
  type RunEvent,
  RunEventSchema,
  RunSchema,
  RunState,
  ValidateFlowResponseSchema,
} from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { isMediaPin } from "../../agent-contract/pins.js";
import { type AgentCatalog, decodeRunPageToken, encodeRunPageToken, pageSizeOf } from "../registry/index.js";
import { describeViolations, Violations, violationsError } from "../registry/violations.js";
import { principalOf } from "../shared/principal.js";
import { mediaViolations } from "./edge-processor.js";
import { parseFlowText } from "./flow-parse.js";
import { listItems } from "./map-items.js";
import { checkFlow, type FlowCheck, type FlowPlan } from "./flow-validate.js";
import type { RunEngine } from "./run-engine.js";
import { newRunId } from "./run-id.js";
import { outputEvent, runningAttempt } from "./run-driver.js";
import { keptManifests, keptMapItems, nodesToRerun, reuseReason, reusedNode } from "./retry.js";
import { isFinalRunState, type RunStore } from "./run-store.js";

export interface OrchestratorServiceDeps {
  readonly store: RunStore;
  readonly catalog: AgentCatalog;
  readonly engine: RunEngine;
}

/** How long CancelRun waits for the driving replica to record the cancellation before answering. */
const cancelWaitMs = 2000;
/** Watchers re-read the log at least this often, in case a notification was missed. */
const watchPollMs = 1000;
const watchBatch = 500;

function runDataLost(runId: string): ConnectError {
  return new ConnectError(
    `the data of run "${runId}" was lost: the run store (Redis) no longer holds it although the run had not finished ` +
      "(it restarted without its data); submit the flow again",
    Code.DataLoss,
  );
}

/** Parses the flow (text or structured) and checks it, with submitted media checked against their pins' limits. */
async function checkSource(
  source: FlowSource | undefined,
  inputs: Readonly<Record<string, PinValue>>,
  catalog: AgentCatalog,
): Promise<{ flow: Flow | undefined } & FlowCheck> {
  let flow: Flow | undefined;
  const parseViolations: Violation[] = [];
  switch (source?.source.case) {
    case "flow":
      flow = source.source.value;
      break;
    case "text": {
      const parsed = parseFlowText(source.source.value);
      flow = parsed.flow;
      parseViolations.push(...parsed.violations.list);
      break;
    }
    default:
      throw new ConnectError("source is required: give a flow or its YAML/JSON text", Code.InvalidArgument);
  }
  if (!flow) return { flow, violations: parseViolations, plan: undefined, order: [] };
  const check = await checkFlow(flow, inputs, catalog);
  const mediaProblems = new Violations();
  for (const [key, value] of Object.entries(inputs)) {
    const dot = key.indexOf(".");
    const planned = check.plan?.nodes.get(key.slice(0, dot));
    const pin = planned?.manifest.inputs.find((p) => p.name === key.slice(dot + 1));
    if (!pin || !isMediaPin(pin.type)) continue;
    // A mapped media pin takes a list: each item is held to the pin's limits.
    const mapped = planned?.node.map?.pin === pin.name ? listItems(value, pin.type) : [value];
    for (const [index, item] of (typeof mapped === "string" ? [] : mapped).entries()) {
      if (item.value.case !== "media") continue;
      const path = planned?.node.map?.pin === pin.name ? `inputs["${key}"][${index}]` : `inputs["${key}"]`;
      for (const problem of mediaViolations(item.value.value, pin)) {
        mediaProblems.add(path, "input.media_constraints", problem, "send an object that fits the pin's declared MIME types and limits");
      }
    }
  }
  const violations = [...parseViolations, ...check.violations, ...mediaProblems.list];
  return { flow, ...check, violations, plan: violations.length === 0 ? check.plan : undefined };
}

function invalidFlow(violations: Violation[]): ConnectError {
  const { message, listed } = violationsError("flow", violations, "ValidateFlow");
  return new ConnectError(message, Code.InvalidArgument, undefined, [{ desc: ValidateFlowResponseSchema, value: { valid: false, violations: listed } }]);
}

/**
 * OrchestratorService. Runs are scoped to the caller's workspace: another workspace's run answers
 * NOT_FOUND, exactly like a run that does not exist. A rejected SubmitFlow carries a
 * `ValidateFlowResponse` in its error details.
 */
export function createOrchestratorService({ store, catalog, engine }: OrchestratorServiceDeps): ServiceImpl<typeof OrchestratorService> {
  async function ownRun(runId: string, ctx: HandlerContext): Promise<Run> {
    const run = await store.get(runId);
    if (!run || run.workspace !== principalOf(ctx).workspace) throw new ConnectError(`run ${runId} not found`, Code.NotFound);
    return run;
  }

  /**
   * Stores a new run of a checked flow and starts driving it. `kept` are nodes that start out
   * succeeded with reused outputs (the run's first events say so, each linking the node its outputs
   * came from), or mapped nodes that start with some items succeeded.
   */
  async function startRun(
    fields: Pick<Run, "flow" | "inputs" | "labels" | "cache"> & Partial<Pick<Run, "retryOf">>,
    plan: FlowPlan,
    kept: ReadonlyMap<string, NodeRun>,
    requestId: string,
    ctx: HandlerContext,
  ): Promise<Run> {
    const principal = principalOf(ctx);
    const run = create(RunSchema, {
      ...fields,
      runId: newRunId(),
      workspace: principal.workspace,
      owner: principal.user,
      state: RunState.PENDING,
      nodes: plan.order.map((id) => {
        const manifest = plan.nodes.get(id)?.manifest;
        return kept.get(id) ?? create(NodeRunSchema, { nodeId: id, agent: `${manifest?.id}@${manifest?.version}`, state: NodeState.PENDING });
      }),
      createdAt: timestampNow(),
    });
    const event = (value: RunEvent["event"], nodeId = "") =>
      create(RunEventSchema, { seq: BigInt(events.length + 1), time: run.createdAt, runId: run.runId, nodeId, event: value });
    const events: RunEvent[] = [];
    events.push(event({ case: "runState", value: create(RunStateChangedSchema, { state: RunState.PENDING }) }));
    for (const node of run.nodes) {
      if (!node.reused) continue;
      // Its outputs as events, as an agent would have reported them, so watchers see them too.
      for (const [pin, value] of Object.entries(node.outputs))
        events.push(event({ case: "agent", value: outputEvent(pin, value, run.createdAt) }, node.nodeId));
      const change = create(NodeStateChangedSchema, { nodeId: node.nodeId, state: node.state, reason: reuseReason(node.reused), reused: node.reused });
      events.push(event({ case: "nodeState", value: change }, node.nodeId));
    }
    run.lastEventSeq = BigInt(events.length);
    const { run: stored, created } = await store.create(run, events, requestId);
    if (created) await engine.launch(stored, plan);
    return stored;
  }

  return {
    async validateFlow(req) {
      const check = await checkSource(req.source, req.inputs, catalog);
      return create(ValidateFlowResponseSchema, { valid: check.violations.length === 0, violations: check.violations, topologicalOrder: check.order });
    },

    async submitFlow(req, ctx) {
      const principal = principalOf(ctx);
      const check = await checkSource(req.source, req.inputs, catalog);
      if (!check.flow || !check.plan) throw invalidFlow(check.violations);
      for (const [key, value] of Object.entries(req.inputs)) {
        const ref = value.value.case === "media" ? value.value.value : value.value.case === "stream" ? value.value.value : undefined;
        if (ref?.workspace && ref.workspace !== principal.workspace) throw new ConnectError(`inputs["${key}"]: referenced object not found`, Code.NotFound);
      }
      return { run: await startRun({ flow: check.flow, inputs: req.inputs, labels: req.labels, cache: req.cache }, check.plan, new Map(), req.requestId, ctx) };
    },

    async retryRun(req, ctx) {
      const original = await ownRun(req.runId, ctx);
      if (original.state !== RunState.FAILED && original.state !== RunState.CANCELLED) {
        throw new ConnectError(
          `run ${original.runId} is ${runStateLabel(original.state)}: only a failed or cancelled run can be retried` +
            (isFinalRunState(original.state) ? " (submit the flow again to run it anew)" : " (wait for it to end, or cancel it first)"),
          Code.FailedPrecondition,
        );
      }
      if (req.fromNode && !original.nodes.some((n) => n.nodeId === req.fromNode)) {
        throw new ConnectError(
          `from_node "${req.fromNode}" is not a node of run ${original.runId}; use one of: ${original.nodes.map((n) => n.nodeId).join(", ")}`,
          Code.InvalidArgument,
        );
      }
      const flow = original.flow;
      if (!flow)
        throw new ConnectError(`run ${original.runId} was stored without its flow and cannot be retried; submit the flow again`, Code.FailedPrecondition);
      const noLongerValid = (violations: Violation[]) =>
        new ConnectError(
          `the flow of run ${original.runId} no longer validates against the registered agents: ${describeViolations(violations)}`,
          Code.FailedPrecondition,
        );
      // The graph decides what reruns; the kept nodes then keep the agent versions that made their outputs.
      const fresh = await checkFlow(flow, original.inputs, catalog);
      if (!fresh.plan) throw noLongerValid(fresh.violations);
      const rerun = nodesToRerun(fresh.plan, original, req.fromNode);
      const pinned = await keptManifests(original, rerun, catalog);
      if (typeof pinned === "string")
        throw new ConnectError(
          `run ${original.runId} cannot be retried: ${pinned}; rerun that node with from_node, or submit the flow again`,
          Code.FailedPrecondition,
        );
      const check = await checkFlow(flow, original.inputs, catalog, pinned);
      if (!check.plan) throw noLongerValid(check.violations);
      const kept = new Map(original.nodes.filter((n) => !rerun.has(n.nodeId)).map((n) => [n.nodeId, reusedNode(original, n)]));
      // A mapped node that failed in part reruns only the items that did not succeed, where it can.
      for (const id of rerun) {
        const partial = keptMapItems(check.plan, original, id, rerun, req.fromNode);
        if (partial) kept.set(id, partial);
      }
      const fields = { flow, inputs: original.inputs, labels: original.labels, cache: original.cache, retryOf: original.runId };
      // Scoped to the original run, so a retry's key never answers with a submitted run that used the same one.
      const requestId = req.requestId && `retry:${original.runId}:${req.requestId}`;
      return { run: await startRun(fields, check.plan, kept, requestId, ctx) };
    },

    async getRun(req, ctx) {
      return { run: await ownRun(req.runId, ctx) };
    },

    async listRuns(req, ctx) {
      const page = await store.list(principalOf(ctx).workspace, req.states, pageSizeOf(req.pageSize), decodeRunPageToken(req.pageToken));
      return {
        runs: page.runs.map((run) => ({ ...run, flow: undefined, inputs: {} })),
        nextPageToken: page.nextAfter ? encodeRunPageToken(page.nextAfter) : "",
      };
    },

    async cancelRun(req, ctx) {
      const run = await ownRun(req.runId, ctx);
      if (isFinalRunState(run.state)) return { run };
      await engine.cancel(run.runId, req.reason || `cancelled by ${principalOf(ctx).user}`);
      const deadline = Date.now() + cancelWaitMs;
      let current = run;
      while (!isFinalRunState(current.state) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        current = (await store.get(run.runId)) ?? current;
      }
      return { run: current };
    },

    async *watchRun(req, ctx) {
      const run = await ownRun(req.runId, ctx);
      if (req.afterSeq > run.lastEventSeq) {
        throw new ConnectError(`after_seq ${req.afterSeq} is past the run's last event (${run.lastEventSeq}); resume from a seq you received`, Code.OutOfRange);
      }
      let after = req.afterSeq;
      let notified = false;
      let wake: (() => void) | undefined;
      const unsubscribe = store.watch(run.runId, () => {
        notified = true;
        wake?.();
      });
      try {
        for (;;) {
          ctx.signal.throwIfAborted();
          notified = false;
          const events = await store.events(run.runId, after, watchBatch);
          for (const event of events) {
            yield event;
            after = event.seq;
            if (isFinalEvent(event)) return;
          }
          if (events.length === watchBatch || notified) continue;
          if (isFinalRunState(run.state) && after >= run.lastEventSeq) return;
          // A run being watched only leaves the store when the store lost it (Redis restarted empty):
          // say so rather than wait for events that cannot come.
          if (!(await store.get(run.runId))) throw runDataLost(run.runId);
          await new Promise<void>((resolve) => {
            const done = () => {
              clearTimeout(timer);
              ctx.signal.removeEventListener("abort", done);
              resolve();
            };
            const timer = setTimeout(done, watchPollMs);
            wake = done;
            ctx.signal.addEventListener("abort", done, { once: true });
          });
          wake = undefined;
        }
      } finally {
        unsubscribe();
      }
    },

    async reportNodeEvents(req, ctx) {
      const principal = principalOf(ctx);
      const scope = principal.run;
      if (!scope || scope.runId !== req.runId || scope.nodeId !== req.nodeId || scope.attempt !== req.attempt) {
        throw new ConnectError("this run token does not cover that run, node and attempt", Code.PermissionDenied);
      }
      const run = await ownRun(req.runId, ctx);
      if (isFinalRunState(run.state)) return { cancelled: true };
      const driver = engine.driverOf(run.runId);
      if (driver) return { cancelled: !driver.report(req) };
      // Driven by another replica: answer from the stored state and pass the events on to it.
      const node = run.nodes.find((n) => n.nodeId === req.nodeId);
      if (!node || !runningAttempt(node, req.attempt)) return { cancelled: true };
      await store.forwardReport(req);
      return { cancelled: false };
    },
  };
}

function runStateLabel(state: RunState): string {
  return (RunState[state] ?? String(state)).toLowerCase();
}

function isFinalEvent(event: RunEvent): boolean {
  return event.event.case === "runState" && isFinalRunState(event.event.value.state);
}
