import { NodeState } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { layoutDag, type LayoutEdge } from "./dag-layout.js";
import { enumWord } from "./dom.js";

/** An edge of the flow with the type of the pin it carries, for its label. */
export interface TypedEdge extends LayoutEdge {
  readonly fromPin: string;
  readonly toPin: string;
  /** `image`, `text`, …; empty when the agent's manifest could not be read. */
  readonly pinType: string;
}

export interface DagView {
  readonly element: SVGSVGElement;
  /** Recolours a node and retitles it; called on every node state change. */
  /** `note` follows the state word, e.g. `cached` for a node whose outputs were reused. */
  setState(nodeId: string, state: NodeState, progress: number, note?: string): void;
  select(nodeId: string): void;
}

const nodeWidth = 168;
const nodeHeight = 52;
const columnGap = 96;
const rowGap = 28;
const margin = 12;
const svgNs = "http://www.w3.org/2000/svg";

function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attributes: Record<string, string | number>,
  ...children: Array<Node | string>
): SVGElementTagNameMap[K] {
  const node = document.createElementNS(svgNs, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  node.append(...children);
  return node;
}

/**
 * The flow drawn as an SVG graph: a box per node coloured by its state (class `node-<state>`), an
 * arrow per edge labelled with its pin type. Each node is a keyboard-focusable button.
 */
export function createDagView(nodes: ReadonlyArray<{ id: string; agent: string }>, edges: readonly TypedEdge[], onSelect: (nodeId: string) => void): DagView {
  const placed = layoutDag(
    nodes.map((n) => n.id),
    edges,
  );
  const position = new Map(placed.map((p) => [p.id, { x: margin + p.layer * (nodeWidth + columnGap), y: margin + p.row * (nodeHeight + rowGap) }]));
  const width = margin * 2 + (Math.max(0, ...placed.map((p) => p.layer)) + 1) * (nodeWidth + columnGap) - columnGap;
  const height = margin * 2 + (Math.max(0, ...placed.map((p) => p.row)) + 1) * (nodeHeight + rowGap) - rowGap;
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "group", "aria-label": "Flow graph", class: "dag" });
  root.append(
    svg(
      "defs",
      {},
      svg(
        "marker",
        { id: "dag-arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
        svg("path", { d: "M0 0 L10 5 L0 10 z", class: "dag-arrowhead" }),
      ),
    ),
  );
  for (const edge of edges) {
    const from = position.get(edge.from);
    const to = position.get(edge.to);
    if (!from || !to) continue;
    const [x1, y1, x2, y2] = [from.x + nodeWidth, from.y + nodeHeight / 2, to.x, to.y + nodeHeight / 2];
    const bend = (x2 - x1) / 2;
    const label = edge.pinType ? `${edge.fromPin}: ${edge.pinType}` : edge.fromPin;
    root.append(
      svg(
        "g",
        { class: "dag-edge", "data-edge": `${edge.from}.${edge.fromPin}->${edge.to}.${edge.toPin}` },
        svg("path", { d: `M${x1} ${y1} C${x1 + bend} ${y1} ${x2 - bend} ${y2} ${x2} ${y2}`, "marker-end": "url(#dag-arrow)" }),
        svg("text", { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 6, "text-anchor": "middle" }, label),
      ),
    );
  }
  const boxes = new Map<string, SVGGElement>();
  for (const node of nodes) {
    const at = position.get(node.id);
    if (!at) continue;
    const title = svg("title", {});
    const box = svg(
      "g",
      { class: "dag-node node-pending", "data-node": node.id, tabindex: 0, role: "button", transform: `translate(${at.x} ${at.y})` },
      title,
      svg("rect", { width: nodeWidth, height: nodeHeight, rx: 8 }),
      svg("rect", { class: "dag-progress", x: 0, y: nodeHeight - 4, width: 0, height: 4, rx: 2 }),
      svg("text", { x: 10, y: 21, class: "dag-node-id" }, node.id),
      svg("text", { x: 10, y: 39, class: "dag-node-state" }, "pending"),
    );
    box.addEventListener("click", () => onSelect(node.id));
    box.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        onSelect(node.id);
      }
    });
    boxes.set(node.id, box);
    root.append(box);
  }
  const view: DagView = {
    element: root,
    setState(nodeId, state, progress, note = "") {
      const box = boxes.get(nodeId);
      if (!box) return;
      const word = enumWord(NodeState, state) + (note ? ` · ${note}` : "");
      box.setAttribute("class", `dag-node node-${enumWord(NodeState, state)}${box.classList.contains("selected") ? " selected" : ""}`);
      box.setAttribute("aria-label", `Node ${nodeId}: ${word}. Show details`);
      const agent = nodes.find((n) => n.id === nodeId)?.agent ?? "";
      box.querySelector("title")?.replaceChildren(`${nodeId} (${agent}): ${word}`);
      box.querySelector(".dag-node-state")?.replaceChildren(progress > 0 && progress < 100 ? `${word} · ${progress.toFixed(0)}%` : word);
      box.querySelector(".dag-progress")?.setAttribute("width", String((nodeWidth * Math.min(100, progress)) / 100));
    },
    select(nodeId) {
      for (const [id, box] of boxes) box.classList.toggle("selected", id === nodeId);
    },
  };
  for (const node of nodes) view.setState(node.id, NodeState.PENDING, 0);
  return view;
}
