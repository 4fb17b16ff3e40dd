import { Code, ConnectError } from "@connectrpc/connect";
import { stringify } from "yaml";
import { type MediaRef, PinType, type StreamRef } from "../../gen/mentatlab/v1/common_pb.js";
import { StreamState } from "../../gen/mentatlab/v1/stream_pb.js";
import { parseFlowText } from "../../services/orchestrator/flow-parse.js";
import type { Api } from "./api.js";
import { byId, describeError, el, showError, showStatus } from "./dom.js";
import { exampleFlows } from "./example-flows.js";
import { InputsForm, unboundInputs } from "./flow-inputs-form.js";
import { runHash } from "./router.js";
import type { MediaLibrary } from "./media-library.js";

const reparseAfterMs = 300;

/**
 * The flow page: pick an example flow or a registered agent (or paste a flow), fill in the flow's
 * unbound inputs, validate, submit, and go to the new run's page.
 */
export function initFlowPage(api: () => Api, library: MediaLibrary): { show(): void } {
  const form = byId("flow-form", HTMLFormElement);
  const picker = byId("flow-pick", HTMLSelectElement);
  const text = byId("flow-text", HTMLTextAreaElement);
  const violations = byId("flow-violations", HTMLUListElement);
  const inputs = new InputsForm(byId("flow-inputs", HTMLFieldSetElement));
  const examples = el("optgroup", { label: "Example flows" }, ...exampleFlows.map((flow, index) => el("option", { value: `example:${index}` }, flow.file)));
  const agents = el("optgroup", { label: "A registered agent alone" });
  picker.append(examples, agents);
  let pending: MediaRef | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let generation = 0;

  const deriveInputs = async () => {
    const ticket = ++generation;
    const parsed = parseFlowText(text.value);
    if (!parsed.flow || !parsed.violations.empty) {
      inputs.show([], [], text.value.trim() === "" ? "Pick or paste a flow to see its inputs." : "Fix the flow to see its inputs; Submit lists every problem.");
      return;
    }
    try {
      const [found, media] = await Promise.all([unboundInputs(api(), parsed.flow), library.list(api())]);
      const streams = found.some((input) => input.pin.type === PinType.STREAM) ? await openStreams(api()) : [];
      if (ticket !== generation) return;
      inputs.show(found, media, undefined, streams);
      if (pending) {
        const key = inputs.offer(pending);
        if (key) showStatus(`${pending.filename || pending.id} is the value of ${key}.`);
        pending = undefined;
      }
    } catch (err) {
      if (ticket === generation) inputs.show([], [], `Could not read the flow's agents: ${describeError(err)}`);
    }
  };
  const scheduleInputs = () => {
    clearTimeout(timer);
    timer = setTimeout(() => void deriveInputs(), reparseAfterMs);
  };

  picker.addEventListener("change", () => {
    const [kind, which = ""] = picker.value.split(/:(.*)/s);
    if (kind === "example") text.value = exampleFlows[Number(which)]?.text ?? "";
    else if (kind === "agent") text.value = singleAgentFlow(which);
    void deriveInputs();
  });
  text.addEventListener("input", scheduleInputs);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    violations.replaceChildren();
    submit(api(), text.value, inputs, violations)
      .then((runId) => {
        if (runId === undefined) return;
        showStatus(`Run ${runId} submitted.`);
        location.hash = runHash(runId);
      })
      .catch(showError);
  });

  return {
    show() {
      pending = library.takeChosen();
      void api()
        .registry.listAgents({ pageSize: 500 })
        .then(({ agents: list }) => agents.replaceChildren(...list.map((a) => el("option", { value: `agent:${a.id}` }, `${a.id} ${a.version}`))))
        .catch(showError);
      void deriveInputs();
    },
  };
}

/** A one-node flow running `agentId`, named after its last dotted part. */
function singleAgentFlow(agentId: string): string {
  const nodeId = (agentId.split(".").pop() ?? "node").replace(/[^A-Za-z0-9_-]/g, "-").replace(/^[^A-Za-z]+/, "") || "node";
  return stringify({
    apiVersion: "v1",
    kind: "Flow",
    meta: { id: `single.${agentId}`, name: `${agentId} alone` },
    graph: { nodes: [{ id: nodeId, agent: agentId }] },
  });
}

async function submit(api: Api, text: string, form: InputsForm, violations: HTMLUListElement): Promise<string | undefined> {
  const inputs = form.values();
  const source = { source: { case: "text" as const, value: text } };
  // Validate first: it reports every violation at once, where a refused submit names only the first.
  const check = await api.orchestrator.validateFlow({ source, inputs });
  if (!check.valid) {
    violations.replaceChildren(
      ...check.violations.map((v) => el("li", {}, el("code", {}, v.fieldPath || "(flow)"), `: ${v.message}`, v.hint ? ` — ${v.hint}` : "")),
    );
    showStatus(`The flow has ${check.violations.length} problem(s); nothing was run.`, "error");
    return undefined;
  }
  const { run } = await api.orchestrator.submitFlow({ source, inputs, requestId: crypto.randomUUID() });
  return run?.runId;
}

/** The workspace's open streams, for stream inputs; none for a key that may not list streams (a producer's). */
async function openStreams(api: Api): Promise<StreamRef[]> {
  try {
    const { streams } = await api.stream.listStreams({ filter: { states: [StreamState.OPEN] }, pageSize: 100 });
    return streams.flatMap((stream) => (stream.ref ? [stream.ref] : []));
  } catch (err) {
    if (err instanceof ConnectError && err.code === Code.PermissionDenied) return [];
    throw err;
  }
}
