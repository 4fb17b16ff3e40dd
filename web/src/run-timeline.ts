import { NodeState } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { el, enumWord } from "./dom.js";
import { formatDuration, type RunView } from "./run-model.js";

/**
 * A Gantt-style row per node: one bar per attempt, placed on the run's own clock (from its creation
 * to its end, or to now while it runs), so waits, retries and parallel branches are visible.
 */
export function renderTimeline(container: HTMLElement, view: RunView, now: Date = new Date()): void {
  const start = view.createdAt.getTime();
  const span = Math.max(1, (view.endedAt ?? now).getTime() - start);
  const percent = (at: Date) => Math.min(100, Math.max(0, ((at.getTime() - start) / span) * 100));
  const rows = Array.from(view.nodes.values(), (node) => {
    const bars = node.attempts.map((attempt) => {
      const left = percent(attempt.startedAt);
      const width = Math.max(0.5, percent(attempt.endedAt ?? now) - left);
      const word = enumWord(NodeState, attempt.state);
      const label = `${node.nodeId} attempt ${attempt.attempt}: ${word}, ${formatDuration(attempt.startedAt, attempt.endedAt, now)}`;
      return el("span", {
        class: `timeline-bar node-${word}`,
        style: `left:${left.toFixed(2)}%;width:${width.toFixed(2)}%`,
        title: label,
        role: "img",
        "aria-label": label,
      });
    });
    return el("li", { "data-node": node.nodeId }, el("span", { class: "timeline-label" }, node.nodeId), el("span", { class: "timeline-track" }, ...bars));
  });
  container.replaceChildren(el("ol", { class: "timeline", "aria-label": "Timeline of the nodes' attempts" }, ...rows));
}
