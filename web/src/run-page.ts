import { toJsonString } from "@bufbuild/protobuf";
import { PinType, PinValueSchema } from "../../gen/mentatlab/v1/common_pb.js";
import { NodeState, ReuseKind, RunState, type Flow, type Run, type RunEvent } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { StreamState } from "../../gen/mentatlab/v1/stream_pb.js";
import { followSequenced } from "../../services/shared/resume.js";
import { finalRunStates, watchRunCall } from "../../services/shared/watched-calls.js";
import type { Api } from "./api.js";
import { createDagView, type DagView, type TypedEdge } from "./dag-view.js";
import { byId, el, enumWord, showError, showStatus } from "./dom.js";
import { describePinValue, previewPinValue } from "./output-preview.js";
import { announcedResume } from "./resume.js";
import { applyRunEvent, describeMap, formatDuration, initialRunView, type NodeView, type RunView } from "./run-model.js";
import { runHash, runLink } from "./router.js";
import { renderTimeline } from "./run-timeline.js";

export interface RunPage {
  /** Shows `runId`, replacing whatever run was on screen, and follows it live. */
  open(runId: string): void;
  /** Stops following: the page is no longer shown. */
  close(): void;
}

/** Everything on screen for the run being shown, dropped whole when another run is opened. */
interface Shown {
  readonly run: Run;
  readonly view: RunView;
  readonly dag: DagView;
  readonly controller: AbortController;
  selected?: string;
  /** Per pin, the value already previewed, so a repeated render does not reload media. */
  previewed: string;
}

/** The run page: state, DAG, the selected node's details, timeline, events, cancel, retry and resubmit. */
export function initRunPage(api: () => Api): RunPage {
  let shown: Shown | undefined;
  /** Aborts the load and the watch of the run on screen, including one whose GetRun has not answered yet. */
  let current: AbortController | undefined;
  let ticker: ReturnType<typeof setInterval> | undefined;
  const cancel = byId("run-cancel", HTMLButtonElement);
  const resubmit = byId("run-resubmit", HTMLButtonElement);
  const retry = byId("run-retry", HTMLButtonElement);

  const close = () => {
    current?.abort();
    current = undefined;
    shown = undefined;
    clearInterval(ticker);
    ticker = undefined;
  };
  const select = (nodeId: string) => {
    if (!shown) return;
    shown.selected = nodeId;
    shown.previewed = "";
    shown.dag.select(nodeId);
    renderNodeDetail(api(), shown);
    byId("node-detail", HTMLElement).focus();
  };
  const open = (runId: string) => {
    close();
    resetPage(runId);
    const controller = new AbortController();
    current = controller;
    load(api(), runId, controller, select)
      .then((loaded) => {
        if (controller.signal.aborted) return;
        shown = loaded;
        // Durations of what still runs grow while nothing else happens.
        ticker = setInterval(() => {
          if (!shown || shown.view.endedAt) return;
          renderClock(shown);
          renderTimeline(byId("run-timeline", HTMLElement), shown.view);
        }, 1000);
        return follow(api(), loaded);
      })
      .catch((err: unknown) => {
        if (!controller.signal.aborted) showError(err);
      });
  };

  cancel.addEventListener("click", () => {
    const runId = shown?.run.runId;
    if (!runId) return;
    cancel.disabled = true;
    api()
      .orchestrator.cancelRun({ runId, reason: "cancelled from the web UI" })
      .then(() => showStatus(`Cancelling run ${runId}…`))
      .catch((err: unknown) => {
        cancel.disabled = false;
        showError(err);
      });
  });
  resubmit.addEventListener("click", () => {
    const run = shown?.run;
    if (!run?.flow) return;
    resubmit.disabled = true;
    api()
      .orchestrator.submitFlow({
        source: { source: { case: "flow", value: run.flow } },
        inputs: run.inputs,
        labels: { ...run.labels, resubmitted_from: run.runId },
        requestId: crypto.randomUUID(),
      })
      .then(({ run: again }) => {
        if (!again) return;
        showStatus(`Run ${again.runId} submitted again from ${run.runId}.`);
        location.hash = runHash(again.runId);
      })
      .catch(showError)
      .finally(() => (resubmit.disabled = false));
  });
  retry.addEventListener("click", () => {
    const runId = shown?.run.runId;
    if (!runId) return;
    retry.disabled = true;
    api()
      .orchestrator.retryRun({ runId, requestId: crypto.randomUUID() })
      .then(({ run: again }) => {
        if (!again) return;
        showStatus(`Run ${again.runId} retries ${runId}, keeping what succeeded.`);
        location.hash = runHash(again.runId);
      })
      .catch((err: unknown) => {
        retry.disabled = false;
        showError(err);
      });
  });
  return { open, close };
}

function resetPage(runId: string): void {
  byId("run-title", HTMLElement).textContent = runId;
  const state = byId("run-state", HTMLElement);
  state.textContent = "loading…";
  state.className = "";
  for (const id of ["run-flow", "run-duration"]) byId(id, HTMLElement).textContent = "";
  for (const id of ["run-dag", "run-timeline", "run-streams"]) byId(id, HTMLElement).replaceChildren();
  byId("run-outputs", HTMLElement).replaceChildren(el("p", { class: "hint" }, "Shown when the run ends."));
  byId("run-events", HTMLOListElement).replaceChildren();
  byId("node-detail", HTMLElement).hidden = true;
  byId("run-retry-of", HTMLElement).replaceChildren();
  for (const id of ["run-cancel", "run-retry", "run-resubmit"]) byId(id, HTMLButtonElement).disabled = true;
}

async function load(api: Api, runId: string, controller: AbortController, select: (nodeId: string) => void): Promise<Shown> {
  const { run } = await api.orchestrator.getRun({ runId }, { signal: controller.signal });
  if (!run) throw new Error(`run ${runId} not found`);
  const view = initialRunView(run);
  const edges = await typedEdges(api, run.flow, controller.signal);
  const dag = createDagView(
    Array.from(view.nodes.values(), (n) => ({ id: n.nodeId, agent: n.agent })),
    edges,
    select,
  );
  byId("run-dag", HTMLElement).replaceChildren(dag.element);
  const meta = run.flow?.meta;
  byId("run-flow", HTMLElement).textContent = meta?.name || meta?.id || "(unnamed flow)";
  byId("run-resubmit", HTMLButtonElement).disabled = !run.flow;
  if (run.retryOf) byId("run-retry-of", HTMLElement).replaceChildren(" · retry of ", runLink(run.retryOf));
  return { run, view, dag, controller, previewed: "" };
}

/** The flow's edges with the type of the pin each carries, read from the source agents' manifests. */
async function typedEdges(api: Api, flow: Flow | undefined, signal: AbortSignal): Promise<TypedEdge[]> {
  const nodes = flow?.graph?.nodes ?? [];
  const manifests = new Map(
    await Promise.all(
      nodes.map(async (node) => {
        // A manifest that cannot be read (removed since) leaves the edge labelled by its pin name only.
        const agent = await api.registry.getAgent({ id: node.agent, version: node.agentVersion }, { signal }).then(
          (r) => r.agent,
          () => undefined,
        );
        return [node.id, agent] as const;
      }),
    ),
  );
  return (flow?.graph?.edges ?? []).map((edge) => {
    const [from = "", fromPin = ""] = edge.from.split(".");
    const [to = "", toPin = ""] = edge.to.split(".");
    const pin = manifests.get(from)?.outputs.find((p) => p.name === fromPin);
    return { from, to, fromPin, toPin, pinType: pin ? enumWord(PinType, pin.type) : "" };
  });
}

/** WatchRun from the first event; after a dropped connection it resumes after the last event shown. */
async function follow(api: Api, shown: Shown): Promise<void> {
  let last = 0n;
  const events = followSequenced(
    watchRunCall(api.orchestrator, shown.run.runId),
    0n,
    announcedResume(() => `run ${shown.run.runId} after event ${last}`),
    shown.controller.signal,
  );
  for await (const event of events) {
    last = event.seq;
    applyRunEvent(shown.view, event);
    showEvent(api, shown, event);
    // A node that starts may open streams: list them while the run goes on, not only at its end.
    if (event.event.case === "nodeState" && event.event.value.state === NodeState.RUNNING) {
      renderRunStreams(api, shown.run.runId, shown.controller.signal).catch((err: unknown) => {
        if (!shown.controller.signal.aborted) showError(err);
      });
    }
  }
  if (shown.controller.signal.aborted) return;
  // The final Run carries the run-level outputs the flow exposes.
  const { run } = await api.orchestrator.getRun({ runId: shown.run.runId }, { signal: shown.controller.signal });
  if (run) await renderRunOutputs(api, run);
  await renderRunStreams(api, shown.run.runId, shown.controller.signal);
}

/** The streams the run's nodes opened, each linked to the streams page that follows it. */
async function renderRunStreams(api: Api, runId: string, signal: AbortSignal): Promise<void> {
  const { streams } = await api.stream.listStreams({ filter: { runId }, pageSize: 100 }, { signal });
  byId("run-streams", HTMLUListElement).replaceChildren(
    ...(streams.length > 0
      ? streams.map((s) =>
          el(
            "li",
            {},
            el("a", { href: `#/streams/${encodeURIComponent(s.ref?.streamId ?? "")}` }, el("code", {}, s.ref?.streamId ?? "")),
            ` ${s.nodeId}.${s.pin}, ${enumWord(StreamState, s.state)}`,
          ),
        )
      : [el("li", { class: "hint" }, "This run opened no streams.")]),
  );
}

function showEvent(api: Api, shown: Shown, event: RunEvent): void {
  const e = event.event;
  if (e.case === "agent" && e.value.event.case === "heartbeat") return;
  if (e.case === "runState") {
    renderRunState(shown.view);
    if (finalRunStates.has(e.value.state)) showStatus(`Run ${event.runId} ${enumWord(RunState, e.value.state)}.`);
  }
  const node = shown.view.nodes.get(event.nodeId);
  if (node) {
    const note = node.reused ? (node.reused.kind === ReuseKind.CACHE ? "cached" : "kept") : node.map ? describeMap(node.map) : "";
    shown.dag.setState(node.nodeId, node.state, node.progress, note);
    if (shown.selected === node.nodeId) renderNodeDetail(api, shown);
  }
  renderTimeline(byId("run-timeline", HTMLElement), shown.view);
  const line = describeEvent(event);
  const who = event.itemIndex === undefined ? event.nodeId || "run" : `${event.nodeId}[${event.itemIndex}]`;
  if (line) byId("run-events", HTMLOListElement).append(el("li", {}, `${who}: ${line}`));
}

function describeEvent(event: RunEvent): string {
  const e = event.event;
  if (e.case === "runState") return `${enumWord(RunState, e.value.state)}${e.value.reason ? `: ${e.value.reason}` : ""}`;
  // A reused node ran no attempt: its reason says where its outputs came from.
  if (e.case === "nodeState")
    return `${enumWord(NodeState, e.value.state)}${e.value.reused ? "" : ` (attempt ${e.value.attempt})`}${e.value.reason ? `: ${e.value.reason}` : ""}`;
  if (e.case === "mapItem")
    return `item ${e.value.index} ${enumWord(NodeState, e.value.state)}${e.value.attempt > 0 ? ` (attempt ${e.value.attempt})` : ""}${e.value.reason ? `: ${e.value.reason}` : ""}`;
  if (e.case !== "agent") return "";
  const a = e.value.event;
  if (a.case === "progress") return `progress ${a.value.percent.toFixed(0)}% ${a.value.message}`;
  if (a.case === "log") return `log: ${a.value.message}`;
  if (a.case === "output")
    return a.value.value
      ? `output ${a.value.pin} = ${a.value.value.value.case === "text" ? JSON.stringify(a.value.value.value.value) : describePinValue(a.value.value)}`
      : "";
  if (a.case === "checkpoint") return `checkpoint ${a.value.name}`;
  if (a.case === "metric") return `metric ${a.value.name} = ${a.value.value}`;
  return "";
}

function renderRunState(view: RunView): void {
  const word = enumWord(RunState, view.state);
  const state = byId("run-state", HTMLElement);
  state.textContent = word + (view.reason ? ` (${view.reason})` : "");
  state.className = `state-${word}`;
  byId("run-cancel", HTMLButtonElement).disabled = finalRunStates.has(view.state);
  byId("run-retry", HTMLButtonElement).disabled = view.state !== RunState.FAILED && view.state !== RunState.CANCELLED;
  renderClock({ view });
}

function renderClock(shown: Pick<Shown, "view">): void {
  byId("run-duration", HTMLElement).textContent = formatDuration(shown.view.createdAt, shown.view.endedAt);
}

function renderNodeDetail(api: Api, shown: Shown): void {
  const node = shown.selected ? shown.view.nodes.get(shown.selected) : undefined;
  const panel = byId("node-detail", HTMLElement);
  if (!node) return;
  panel.hidden = false;
  byId("node-title", HTMLElement).textContent = `${node.nodeId} · ${node.agent} · ${enumWord(NodeState, node.state)}`;
  const reused = byId("node-reused", HTMLElement);
  reused.hidden = !node.reused;
  if (node.reused) {
    const how = node.reused.kind === ReuseKind.CACHE ? "Cached: no agent ran; outputs of" : "Kept by the retry: no agent ran; outputs of";
    reused.replaceChildren(`${how} node ${node.reused.nodeId} in run `, runLink(node.reused.runId), ".");
  }
  byId("node-attempts", HTMLTableElement).tBodies[0]?.replaceChildren(...attemptRows(node));
  const progress = byId("node-progress", HTMLElement);
  progress.replaceChildren(
    el("progress", { max: "100", value: String(node.progress), "aria-label": `Progress of ${node.nodeId}` }),
    ` ${node.progress.toFixed(0)}% ${node.progressMessage}`,
    ...[...(node.map?.failures ?? [])]
      .sort(([a], [b]) => a - b)
      .map(([index, reason]) => el("div", { class: "map-failure" }, `item ${index} failed: ${reason}`)),
  );
  byId("node-log", HTMLOListElement).replaceChildren(...node.log.map((line) => el("li", {}, line)));
  const signature = Array.from(node.outputs, ([pin, value]) => `${pin}=${toJsonString(PinValueSchema, value)}`).join("\n") + `@${node.nodeId}`;
  if (signature === shown.previewed) return;
  shown.previewed = signature;
  const outputs = byId("node-outputs", HTMLElement);
  if (node.outputs.size === 0) {
    outputs.replaceChildren(el("p", { class: "hint" }, "No outputs yet."));
    return;
  }
  void Promise.all(Array.from(node.outputs, ([pin, value]) => previewPinValue(api, pin, value))).then((previews) => {
    if (shown.previewed === signature) outputs.replaceChildren(...previews);
  });
}

function attemptRows(node: NodeView): HTMLTableRowElement[] {
  if (node.attempts.length === 0) return [el("tr", {}, el("td", { colspan: "4" }, "Not started."))];
  return node.attempts.map((a) =>
    el(
      "tr",
      {},
      el("td", {}, String(a.attempt)),
      el("td", { class: `state-${enumWord(NodeState, a.state)}` }, enumWord(NodeState, a.state)),
      el("td", {}, formatDuration(a.startedAt, a.endedAt)),
      el("td", {}, a.reason),
    ),
  );
}

async function renderRunOutputs(api: Api, run: Run): Promise<void> {
  const entries = Object.entries(run.outputs);
  const box = byId("run-outputs", HTMLElement);
  if (entries.length === 0) {
    box.replaceChildren(el("p", { class: "hint" }, "This run exposes no outputs of its own; select a node to see its outputs."));
    return;
  }
  box.replaceChildren(...(await Promise.all(entries.map(([pin, value]) => previewPinValue(api, pin, value)))));
}
