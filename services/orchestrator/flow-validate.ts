import { BackpressurePolicy, PinType, type PinValue, type Violation } from "../../gen/mentatlab/v1/common_pb.js";
import { type Flow, type FlowNode, JoinMode } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import type { AgentManifest, Pin } from "../../gen/mentatlab/v1/registry_pb.js";
import { type AgentCatalog, isResolveFailure } from "../registry/index.js";
import { pinTypeName } from "../../agent-contract/pins.js";
import { Violations } from "../registry/violations.js";
import { pinTypesCompatible, valueFitsPin } from "../../agent-contract/pin-compat.js";
import { compileCondition, type EdgeTest } from "./edge-condition.js";
import { listItems, maxMapConcurrency } from "./map-items.js";

/** How the stream of an edge treats its destination agent when it reads too slowly. */
export interface EdgeBackpressure {
  readonly policy: BackpressurePolicy;
  /** 0 takes the stream service's default. */
  readonly windowBytes: bigint;
}

/** An edge into an input pin: the output it carries and, for a conditional edge, its compiled condition. */
export interface UpstreamEdge {
  readonly node: string;
  readonly pin: string;
  readonly when?: EdgeTest;
  /** Flow control of a stream edge: the edge's policy, else its source pin's. */
  readonly backpressure?: EdgeBackpressure;
}

/**
 * Where an input pin's value comes from: edges (several only into a node with `join: any`, the first
 * taken in flow order wins), or a submitted value.
 */
export type InputSource = { readonly kind: "edge"; readonly edges: readonly UpstreamEdge[] } | { readonly kind: "submitted"; readonly key: string };

/** One node of a validated flow, with everything the scheduler needs. */
export interface PlannedNode {
  readonly node: FlowNode;
  readonly manifest: AgentManifest;
  /** Bound inputs by pin name. */
  readonly inputs: ReadonlyMap<string, InputSource>;
  /** Nodes that consume this node's outputs. */
  readonly downstream: readonly string[];
}

/** A flow that passed validation. */
export interface FlowPlan {
  /** Node ids in start order, ties broken by id. */
  readonly order: readonly string[];
  readonly nodes: ReadonlyMap<string, PlannedNode>;
}

export interface FlowCheck {
  readonly violations: Violation[];
  /** Set when there are no violations. */
  readonly plan: FlowPlan | undefined;
  /** As far as it could be computed (nodes on cycles are left out). */
  readonly order: string[];
}

const nodeIdPattern = /^[A-Za-z][A-Za-z0-9_-]{0,62}$/;

/**
 * Checks a flow against the registered agents and the submitted inputs, reporting everything at once:
 * shape, duplicate or bad node ids, unknown agents or versions, malformed edges, unknown nodes and pins,
 * pin type mismatches, inputs bound twice (unless the node joins any branch), conditions that do not
 * compile, map specs that do not fit their node, cycles, unbound required inputs, and submitted values
 * (for a mapped pin, lists) that do not fit their pins. `resolved` lets the caller pin agent versions (e.g. a resumed run keeps the
 * versions it started with).
 */
export async function checkFlow(
  flow: Flow,
  submitted: Readonly<Record<string, PinValue>>,
  catalog: AgentCatalog,
  resolved?: ReadonlyMap<string, AgentManifest>,
): Promise<FlowCheck> {
  const v = new Violations();
  if (flow.kind && flow.kind !== "Flow") v.add("kind", "flow.kind", `kind is "${flow.kind}", not Flow`, "set kind: Flow");
  const nodes = flow.graph?.nodes ?? [];
  const edges = flow.graph?.edges ?? [];
  if (nodes.length === 0) v.add("graph.nodes", "flow.nodes_required", "the flow has no nodes", "add at least one node under graph.nodes");

  const manifests = new Map<string, AgentManifest>();
  const seenIds = new Set<string>();
  await Promise.all(
    nodes.map(async (node, i) => {
      const path = `graph.nodes[${i}]`;
      if (!nodeIdPattern.test(node.id)) {
        v.add(
          `${path}.id`,
          "node.id",
          node.id ? `"${node.id}" is not a valid node id` : "node id is missing",
          "start with a letter; use letters, digits, _ and - (at most 63)",
        );
      } else if (seenIds.has(node.id)) {
        v.add(`${path}.id`, "node.id_unique", `node id "${node.id}" is used twice`, "give every node a distinct id");
        return;
      }
      seenIds.add(node.id);
      if (!node.agent) {
        v.add(`${path}.agent`, "node.agent_required", "the node names no agent", "set agent to a registered agent id");
        return;
      }
      const manifest = resolved?.get(node.id) ?? (await catalog.resolve(node.agent, node.agentVersion));
      if (isResolveFailure(manifest)) {
        v.add(
          `${path}.agent`,
          manifest.reason === "unknown_agent" ? "node.agent_known" : "node.agent_version",
          manifest.message,
          manifest.reason === "unknown_agent" ? "register the agent first, or fix the id" : "use a registered version or a range that matches one",
        );
      } else {
        manifests.set(node.id, manifest);
      }
    }),
  );

  const inputs = new Map<string, Map<string, { kind: "edge"; edges: UpstreamEdge[] } | { kind: "submitted"; key: string }>>(
    nodes.map((n) => [n.id, new Map()]),
  );
  const nodeById = new Map(nodes.map((n, i) => [n.id, { node: n, path: `graph.nodes[${i}]` }]));
  // The pin a mapped node maps over, for nodes whose map spec names an input of their agent.
  const mappedPin = new Map<string, string>();
  nodes.forEach((node, i) => {
    const manifest = manifests.get(node.id);
    if (manifest && node.map) checkMapSpec(node, manifest, `graph.nodes[${i}]`, v, mappedPin);
  });
  const downstream = new Map<string, Set<string>>(nodes.map((n) => [n.id, new Set()]));
  const endpoint = (text: string, path: string, side: "from" | "to"): { node: string; pin: Pin | undefined } | undefined => {
    const dot = text.indexOf(".");
    const [nodeId, pinName] = [text.slice(0, dot), text.slice(dot + 1)];
    if (dot < 1 || !pinName || pinName.includes(".")) {
      v.add(path, "edge.endpoint", `"${text}" is not node.pin`, "write the endpoint as nodeId.pinName, e.g. resize.image");
      return undefined;
    }
    if (!seenIds.has(nodeId)) {
      v.add(path, "edge.node_known", `node "${nodeId}" is not in the flow`, `use one of: ${[...seenIds].join(", ")}`);
      return undefined;
    }
    const manifest = manifests.get(nodeId);
    if (!manifest) return { node: nodeId, pin: undefined };
    const pins = side === "from" ? manifest.outputs : manifest.inputs;
    const pin = pins.find((p) => p.name === pinName);
    if (!pin) {
      v.add(
        path,
        "edge.pin_known",
        `agent ${manifest.id} has no ${side === "from" ? "output" : "input"} pin "${pinName}"`,
        `use one of: ${pins.map((p) => p.name).join(", ") || "(none)"}`,
      );
      return undefined;
    }
    return { node: nodeId, pin };
  };
  edges.forEach((edge, i) => {
    const path = `graph.edges[${i}]`;
    const from = endpoint(edge.from, `${path}.from`, "from");
    const to = endpoint(edge.to, `${path}.to`, "to");
    if (!from || !to) return;
    const pinName = edge.to.slice(edge.to.indexOf(".") + 1);
    const fromList = mappedPin.has(from.node);
    const toList = mappedPin.get(to.node) === pinName;
    if (from.pin && to.pin && !edgeTypesFit(from.pin.type, fromList, to.pin.type, toList)) {
      v.add(
        path,
        "edge.pin_type",
        `${edge.from} carries ${listTypeName(from.pin.type, fromList)} but ${edge.to} takes ${listTypeName(to.pin.type, toList)}`,
        fromList || toList
          ? "a mapped node's outputs are json lists, and its mapped input takes a list: connect json pins, or map over the list again"
          : "connect pins of the same type, or put a converting agent between them",
      );
    }
    const bound = inputs.get(to.node);
    const joinsAny = nodeById.get(to.node)?.node.join === JoinMode.ANY;
    const existing = bound?.get(pinName);
    if (existing && !joinsAny) {
      v.add(
        `${path}.to`,
        "edge.input_bound_once",
        `input ${edge.to} is fed by more than one edge`,
        "feed each input from exactly one output, or set `join: any` on the node to take whichever branch ran",
      );
      return;
    }
    if (joinsAny && from.pin?.type === PinType.STREAM) {
      v.add(
        path,
        "join.stream",
        `${edge.from} is a stream into ${to.node}, which joins any branch: it waits for its upstream nodes to end, and a stream must be read while it runs`,
        "drop `join: any` or the stream edge",
      );
    }
    const fromPin = edge.from.slice(edge.from.indexOf(".") + 1);
    let when: EdgeTest | undefined;
    if (edge.when) {
      const sourceOutputs = manifests.get(from.node)?.outputs ?? [];
      const tested = sourceOutputs.find((p) => p.name === (edge.when?.pin || fromPin));
      const testable = sourceOutputs.filter((p) => p.type === PinType.TEXT || p.type === PinType.JSON || (fromList && p.type !== PinType.STREAM));
      if (from.pin?.type === PinType.STREAM) {
        v.add(
          `${path}.when`,
          "edge.condition_stream",
          `${edge.from} is a stream, which starts before its node ends: it cannot be conditional`,
          "drop the condition, or branch on a text or json output instead",
        );
      } else if (edge.when.expr) {
        const compiled = compileCondition(
          edge.when,
          testable.map((p) => p.name),
        );
        if (typeof compiled === "string")
          v.add(`${path}.when.expr`, "edge.condition_expr", compiled, "fix the CEL expression; see docs/reuse.md for its variables");
        else when = compiled;
      } else if (!tested) {
        v.add(
          `${path}.when.pin`,
          "edge.condition_pin",
          `node "${from.node}" has no output pin "${edge.when.pin}"`,
          `test one of: ${
            manifests
              .get(from.node)
              ?.outputs.map((p) => p.name)
              .join(", ") || "(none)"
          }`,
        );
      } else if (!testable.includes(tested)) {
        v.add(
          `${path}.when.pin`,
          "edge.condition_pin_type",
          `${from.node}.${tested.name} is ${pinTypeName(tested.type)}; a condition compares text or json values`,
          "test a text or json output",
        );
      } else {
        const compiled = compileCondition(edge.when, []);
        if (typeof compiled !== "string") when = compiled;
      }
    }
    const streamEdge = from.pin?.type === PinType.STREAM;
    if (!streamEdge && from.pin) {
      if (edge.backpressure !== BackpressurePolicy.UNSPECIFIED) {
        v.add(
          `${path}.backpressure`,
          "edge.backpressure_stream",
          `${edge.from} carries ${pinTypeName(from.pin.type)}, not a stream: only stream edges have backpressure`,
          "remove backpressure from this edge",
        );
      }
      if (edge.backpressureWindowBytes > 0n) {
        v.add(
          `${path}.backpressure_window_bytes`,
          "edge.backpressure_stream",
          `${edge.from} carries ${pinTypeName(from.pin.type)}, not a stream: only stream edges have a backpressure window`,
          "remove backpressure_window_bytes from this edge",
        );
      }
    }
    const policy = edge.backpressure || (from.pin?.backpressure ?? BackpressurePolicy.UNSPECIFIED);
    const upstream = {
      node: from.node,
      pin: fromPin,
      ...(when ? { when } : {}),
      ...(streamEdge ? { backpressure: { policy, windowBytes: edge.backpressureWindowBytes } } : {}),
    };
    if (existing?.kind === "edge") existing.edges.push(upstream);
    else bound?.set(pinName, { kind: "edge", edges: [upstream] });
    downstream.get(from.node)?.add(to.node);
  });

  for (const [key, value] of Object.entries(submitted)) {
    const path = `inputs["${key}"]`;
    const dot = key.indexOf(".");
    const [nodeId, pinName] = [key.slice(0, dot), key.slice(dot + 1)];
    const manifest = manifests.get(nodeId);
    if (dot < 1 || !seenIds.has(nodeId)) {
      v.add(path, "input.node_known", `"${key}" does not name a node of the flow`, "key inputs as nodeId.pinName");
      continue;
    }
    if (!manifest) continue;
    const pin = manifest.inputs.find((p) => p.name === pinName);
    if (!pin) {
      v.add(
        path,
        "input.pin_known",
        `agent ${manifest.id} has no input pin "${pinName}"`,
        `use one of: ${manifest.inputs.map((p) => p.name).join(", ") || "(none)"}`,
      );
    } else if (inputs.get(nodeId)?.has(pinName)) {
      v.add(path, "input.bound_once", `${key} is already fed by an edge`, "drop the submitted value or the edge");
    } else if (mappedPin.get(nodeId) === pinName) {
      const items = listItems(value, pin.type);
      if (typeof items === "string") v.add(path, "map.input_list", `${key} is mapped over: ${items}`, `submit a json list of ${pinTypeName(pin.type)} values`);
      else inputs.get(nodeId)?.set(pinName, { kind: "submitted", key });
    } else if (!valueFitsPin(value, pin.type)) {
      v.add(
        path,
        "input.value_type",
        `${key} takes ${pinTypeName(pin.type)} but got a ${value.value.case ?? "missing"} value`,
        `send a value that fits a ${pinTypeName(pin.type)} pin`,
      );
    } else {
      inputs.get(nodeId)?.set(pinName, { kind: "submitted", key });
    }
  }

  for (const [nodeId, manifest] of manifests) {
    for (const pin of manifest.inputs) {
      // A mapped pin left unbound is reported by the map check below.
      if (pin.required && mappedPin.get(nodeId) !== pin.name && !inputs.get(nodeId)?.has(pin.name) && !(`${nodeId}.${pin.name}` in submitted)) {
        v.add(
          `graph.nodes[${nodes.findIndex((n) => n.id === nodeId)}]`,
          "input.required_unbound",
          `required input ${nodeId}.${pin.name} is fed by no edge and no submitted value`,
          `add an edge to ${nodeId}.${pin.name} or submit inputs["${nodeId}.${pin.name}"]`,
        );
      }
    }
  }

  for (const [nodeId, pinName] of mappedPin) {
    const entry = nodeById.get(nodeId);
    if (entry && !inputs.get(nodeId)?.has(pinName) && !(`${nodeId}.${pinName}` in submitted)) {
      v.add(
        `${entry.path}.map.pin`,
        "map.pin_unbound",
        `${nodeId}.${pinName} is mapped over but fed by no edge and no submitted value`,
        `add an edge to ${nodeId}.${pinName} or submit a list as inputs["${nodeId}.${pinName}"]`,
      );
    }
  }

  const order = topologicalOrder([...seenIds], downstream);
  if (order.length < seenIds.size) {
    const onCycle = [...seenIds].filter((id) => !order.includes(id)).sort();
    v.add("graph.edges", "flow.acyclic", `the graph has a cycle through ${onCycle.join(", ")}`, "remove an edge so the nodes form a directed acyclic graph");
  }
  if (!v.empty) return { violations: v.list, plan: undefined, order };
  const planned = new Map<string, PlannedNode>();
  for (const node of nodes) {
    const manifest = manifests.get(node.id);
    if (!manifest) continue;
    planned.set(node.id, { node, manifest, inputs: inputs.get(node.id) ?? new Map(), downstream: [...(downstream.get(node.id) ?? [])].sort() });
  }
  return { violations: [], plan: { order, nodes: planned }, order };
}

/** Kahn's algorithm, picking the smallest ready id first so the order is deterministic. */
function topologicalOrder(ids: string[], downstream: ReadonlyMap<string, ReadonlySet<string>>): string[] {
  const indegree = new Map(ids.map((id) => [id, 0]));
  for (const targets of downstream.values()) for (const t of targets) indegree.set(t, (indegree.get(t) ?? 0) + 1);
  const ready = ids.filter((id) => indegree.get(id) === 0).sort();
  const order: string[] = [];
  while (ready.length > 0) {
    const id = ready.shift() as string;
    order.push(id);
    const released: string[] = [];
    for (const t of downstream.get(id) ?? []) {
      const left = (indegree.get(t) ?? 0) - 1;
      indegree.set(t, left);
      if (left === 0) released.push(t);
    }
    if (released.length > 0) {
      ready.push(...released);
      ready.sort();
    }
  }
  return order;
}

/**
 * Whether an edge's types fit, with a mapped node's outputs being lists (`fromList`) and its mapped
 * input taking one (`toList`): a list feeds a json pin whole, or a mapped pin of a compatible item type;
 * a mapped pin fed by a node that is not mapped takes a json output (a list by run time).
 */
function edgeTypesFit(from: PinType, fromList: boolean, to: PinType, toList: boolean): boolean {
  if (fromList === toList) return pinTypesCompatible(from, to);
  return fromList ? to === PinType.JSON : from === PinType.JSON;
}

function listTypeName(type: PinType, list: boolean): string {
  return list ? `a json list of ${pinTypeName(type)}` : pinTypeName(type);
}

/** Checks a node's map spec against its agent, recording the mapped pin when it names a mappable input. */
function checkMapSpec(node: FlowNode, manifest: AgentManifest, path: string, v: Violations, mappedPin: Map<string, string>): void {
  const spec = node.map;
  if (!spec) return;
  const concurrency = spec.concurrency;
  if (concurrency !== undefined && (concurrency < 1 || concurrency > maxMapConcurrency)) {
    v.add(
      `${path}.map.concurrency`,
      "map.concurrency",
      `concurrency ${concurrency} is outside 1 to ${maxMapConcurrency}`,
      `give between 1 and ${maxMapConcurrency} items at once`,
    );
  }
  const streamOutput = manifest.outputs.find((p) => p.type === PinType.STREAM);
  if (streamOutput) {
    v.add(
      `${path}.map`,
      "map.stream_output",
      `agent ${manifest.id} has a stream output "${streamOutput.name}": a mapped node's outputs are lists, and a list of live streams is not a value`,
      "map a node whose agent has no stream output",
    );
  }
  const pin = manifest.inputs.find((p) => p.name === spec.pin);
  if (!pin) {
    v.add(
      `${path}.map.pin`,
      "map.pin_known",
      `agent ${manifest.id} has no input pin "${spec.pin}" to map over`,
      `use one of: ${manifest.inputs.map((p) => p.name).join(", ") || "(none)"}`,
    );
  } else if (pin.type === PinType.STREAM) {
    v.add(
      `${path}.map.pin`,
      "map.pin_stream",
      `${node.id}.${spec.pin} is a stream, which cannot be split into items`,
      "map over a text, json, binary or media input",
    );
  } else {
    mappedPin.set(node.id, spec.pin);
  }
}
