import { create } from "@bufbuild/protobuf";
import { PinType } from "../../gen/mentatlab/v1/common_pb.js";
import {
  MapItemSchema,
  MapProgressSchema,
  type NodeReuse,
  NodeReuseSchema,
  type NodeRun,
  NodeRunSchema,
  NodeState,
  ReuseKind,
  type Run,
} from "../../gen/mentatlab/v1/orchestrator_pb.js";
import type { AgentManifest } from "../../gen/mentatlab/v1/registry_pb.js";
import { type AgentCatalog, isResolveFailure } from "../registry/index.js";
import type { FlowPlan } from "./flow-validate.js";

/**
 * The nodes a retry of `original` runs again: every node that did not succeed, `fromNode` when given,
 * everything downstream of those, and the producer of any stream a rerun node reads (a stream is live
 * data that ended with its run: it cannot be replayed to a new consumer, so its producer runs again,
 * and then its own downstream too).
 */
export function nodesToRerun(plan: FlowPlan, original: Run, fromNode: string): Set<string> {
  const succeeded = new Set(original.nodes.filter((n) => n.state === NodeState.SUCCEEDED).map((n) => n.nodeId));
  const rerun = new Set(plan.order.filter((id) => !succeeded.has(id) || id === fromNode));
  let grew = true;
  while (grew) {
    grew = false;
    const add = (id: string) => {
      if (rerun.has(id)) return;
      rerun.add(id);
      grew = true;
    };
    for (const id of [...rerun]) {
      const planned = plan.nodes.get(id);
      for (const next of planned?.downstream ?? []) add(next);
      for (const source of planned?.inputs.values() ?? []) {
        for (const edge of source.kind === "edge" ? source.edges : []) {
          const pin = plan.nodes.get(edge.node)?.manifest.outputs.find((p) => p.name === edge.pin);
          if (pin?.type === PinType.STREAM) add(edge.node);
        }
      }
    }
  }
  return rerun;
}

/**
 * The manifests the original run used for the nodes a retry keeps, so the kept outputs stay those of
 * the agent versions that made them; rerun nodes resolve their agents afresh (a fixed agent registered
 * since is picked up). A string says which kept node's agent is gone.
 */
export async function keptManifests(original: Run, rerun: ReadonlySet<string>, catalog: AgentCatalog): Promise<Map<string, AgentManifest> | string> {
  const pinned = new Map<string, AgentManifest>();
  for (const node of original.nodes) {
    if (rerun.has(node.nodeId)) continue;
    const at = node.agent.lastIndexOf("@");
    const manifest = await catalog.resolve(node.agent.slice(0, at), node.agent.slice(at + 1));
    if (isResolveFailure(manifest)) return `node "${node.nodeId}" succeeded with ${node.agent}, which is no longer registered: ${manifest.message}`;
    pinned.set(node.nodeId, manifest);
  }
  return pinned;
}

/** A kept node in the new run: succeeded, with the original's outputs and a link to the run and node that produced them. */
export function reusedNode(original: Run, node: NodeRun): NodeRun {
  return create(NodeRunSchema, {
    nodeId: node.nodeId,
    agent: node.agent,
    state: NodeState.SUCCEEDED,
    startedAt: node.startedAt,
    endedAt: node.endedAt,
    outputs: node.outputs,
    progressPercent: 100,
    reused: producerOf(original.runId, node, ReuseKind.RETRY),
  });
}

/**
 * A mapped node the retry reruns, starting with the items that succeeded in the original kept, when
 * neither its list nor its agent can have changed: every node feeding it is kept, it is not
 * `fromNode`, and its agent resolves to the version that ran. Undefined when the whole node reruns.
 */
export function keptMapItems(plan: FlowPlan, original: Run, nodeId: string, rerun: ReadonlySet<string>, fromNode: string): NodeRun | undefined {
  const node = original.nodes.find((n) => n.nodeId === nodeId);
  const planned = plan.nodes.get(nodeId);
  if (!node?.map || !planned || nodeId === fromNode || `${planned.manifest.id}@${planned.manifest.version}` !== node.agent) return undefined;
  for (const source of planned.inputs.values()) if (source.kind === "edge" && source.edges.some((edge) => rerun.has(edge.node))) return undefined;
  if (!node.map.items.some((item) => item.state === NodeState.SUCCEEDED)) return undefined;
  const items = node.map.items.map((item) =>
    item.state === NodeState.SUCCEEDED
      ? create(MapItemSchema, {
          index: item.index,
          state: NodeState.SUCCEEDED,
          outputs: item.outputs,
          reused: create(NodeReuseSchema, { kind: ReuseKind.RETRY, runId: item.reused?.runId || original.runId, nodeId: item.reused?.nodeId || nodeId }),
        })
      : create(MapItemSchema, { index: item.index, state: NodeState.PENDING }),
  );
  return create(NodeRunSchema, { nodeId, agent: node.agent, state: NodeState.PENDING, map: create(MapProgressSchema, { total: node.map.total, items }) });
}

/**
 * Where a node's outputs were produced: the node itself, or, when it had reused them already (a retry
 * of a retry, a cache hit), the run and node its outputs came from, so the link always leads to an agent that ran.
 */
export function producerOf(runId: string, node: NodeRun, kind: ReuseKind): NodeReuse {
  const origin = node.reused;
  return create(NodeReuseSchema, { kind, runId: origin?.runId || runId, nodeId: origin?.nodeId || node.nodeId });
}

/** The reason text of a reused node's SUCCEEDED event, e.g. `reused from run run_… node a (retry)`. */
export function reuseReason(reuse: NodeReuse): string {
  return `reused from run ${reuse.runId} node ${reuse.nodeId} (${reuse.kind === ReuseKind.CACHE ? "cached" : "retry"})`;
}
