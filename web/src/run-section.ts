import { NodeState, RunState, type RunEvent } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import type { PinValue } from "../../gen/mentatlab/v1/common_pb.js";
import { followSequenced } from "../../services/shared/resume.js";
import { finalRunStates, watchRunCall } from "../../services/shared/watched-calls.js";
import type { Api } from "./api.js";
import { byId, el, enumWord, showError, showStatus } from "./dom.js";
import { announcedResume } from "./resume.js";


export interface RunSection {
  /** Follows `runId`, replacing whatever run was on screen. */
  watch(runId: string): void;
  /** Stops following and empties the section, so nothing of the previous run stays on screen. */
  clear(): void;
}

/** Follows one run live: its state, a row per node, and every event. Watching another run stops the first. */
export function initRunSection(api: () => Api): RunSection {
  const form = byId("run-form", HTMLFormElement);
  const input = byId("run-id", HTMLInputElement);
  let current: AbortController | undefined;

  const clear = (stateText = "–") => {
    current?.abort();
    current = undefined;
    const state = byId("run-state", HTMLElement);
    state.textContent = stateText;
    state.className = "";
    byId("run-events", HTMLOListElement).replaceChildren();
    byId("run-nodes", HTMLTableElement).tBodies[0]?.replaceChildren();
  };
  const watch = (runId: string) => {
    clear("connecting…");
    const controller = new AbortController();
    current = controller;
    input.value = runId;
    follow(api(), runId, controller.signal).catch((err: unknown) => {
      if (!controller.signal.aborted) showError(err);
    });
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (input.value.trim() !== "") watch(input.value.trim());
  });
  return {
    watch,
    clear: () => {
      clear();
      input.value = "";
    },
  };
}

/** Streams WatchRun; after a dropped connection it resumes after the last event shown. */
async function follow(api: Api, runId: string, signal: AbortSignal): Promise<void> {
  let last = 0n;
  const events = followSequenced(
    watchRunCall(api.orchestrator, runId),
    0n,
    announcedResume(() => `run ${runId} after event ${last}`),
    signal,
  );
  for await (const event of events) {
    last = event.seq;
    show(event);
  }
}

function show(event: RunEvent): void {
  const e = event.event;
  let text = "";
  switch (e.case) {
    case "runState": {
      const state = byId("run-state", HTMLElement);
      state.textContent = enumWord(RunState, e.value.state) + (e.value.reason ? ` (${e.value.reason})` : "");
      state.className = `state-${enumWord(RunState, e.value.state)}`;
      text = `${enumWord(RunState, e.value.state)}${e.value.reason ? `: ${e.value.reason}` : ""}`;
      if (finalRunStates.has(e.value.state)) showStatus(`Run ${event.runId} ${enumWord(RunState, e.value.state)}.`);
      break;
    }
    case "nodeState":
      nodeRow(event.nodeId).state.textContent = enumWord(NodeState, e.value.state);
      if (e.value.reason) nodeRow(event.nodeId).detail.textContent = e.value.reason;
      if (e.value.state === NodeState.SUCCEEDED) showProgress(event.nodeId, 100);
      text = `${enumWord(NodeState, e.value.state)} (attempt ${e.value.attempt})${e.value.reason ? `: ${e.value.reason}` : ""}`;
      break;
    case "agent": {
      const a = e.value.event;
      if (a.case === "heartbeat") return;
      if (a.case === "progress") {
        showProgress(event.nodeId, a.value.percent);
        text = `progress ${a.value.percent.toFixed(0)}% ${a.value.message}`;
      } else if (a.case === "log") text = `log: ${a.value.message}`;
      else if (a.case === "output") {
        text = `output ${a.value.pin} = ${describeValue(a.value.value)}`;
        nodeRow(event.nodeId).detail.textContent = text;
      } else if (a.case === "checkpoint") text = `checkpoint ${a.value.name}`;
      else if (a.case === "metric") text = `metric ${a.value.name} = ${a.value.value}`;
      break;
    }
    default:
      return;
  }
  byId("run-events", HTMLOListElement).append(el("li", {}, `${event.nodeId || "run"}: ${text}`));
}

function showProgress(nodeId: string, percent: number): void {
  const bar = el("progress", { max: "100", value: String(percent), "aria-label": `Progress of ${nodeId}` });
  nodeRow(nodeId).progress.replaceChildren(bar, ` ${percent.toFixed(0)}%`);
}

function describeValue(value: PinValue | undefined): string {
  const v = value?.value;
  if (v?.case === "text") return JSON.stringify(v.value);
  if (v?.case === "media") return `media ${v.value.id} (${v.value.mimeType})`;
  if (v?.case === "stream") return `stream ${v.value.streamId}`;
  if (v?.case === "inlineBytes") return `${v.value.byteLength} bytes`;
  return v?.case ?? "(empty)";
}

function nodeRow(nodeId: string): { state: HTMLElement; progress: HTMLElement; detail: HTMLElement } {
  const body = byId("run-nodes", HTMLTableElement).tBodies[0] as HTMLTableSectionElement;
  let row = Array.from(body.rows).find((r) => r.dataset.node === nodeId);
  if (!row) {
    row = el("tr", { "data-node": nodeId }, el("th", { scope: "row" }, nodeId), el("td"), el("td"), el("td"));
    body.append(row);
  }
  const cells = row.cells;
  const cell = (index: number) => cells.item(index) as HTMLTableCellElement;
  return { state: cell(1), progress: cell(2), detail: cell(3) };
}
