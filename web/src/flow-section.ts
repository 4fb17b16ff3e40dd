import { fromJsonString, type MessageInitShape } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { PinValueSchema } from "../../gen/mentatlab/v1/common_pb.js";
import type { Api } from "./api.js";
import type { RunSection } from "./run-section.js";
import { byId, el, showError, showStatus } from "./dom.js";

type PinValueInit = MessageInitShape<typeof PinValueSchema>;

/** Pastes a flow and its inputs, validates, submits, and hands the run to the run watcher. */
export function initFlowSection(api: () => Api, runs: RunSection): void {
  const form = byId("flow-form", HTMLFormElement);
  const violations = byId("flow-violations", HTMLUListElement);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    violations.replaceChildren();
    // A new submit starts from a clean run section: the previous run's state must not pass for this one's.
    runs.clear();
    submit(api(), byId("flow-text", HTMLTextAreaElement).value, byId("flow-inputs", HTMLTextAreaElement).value, violations)
      .then((runId) => {
        if (runId === undefined) return;
        showStatus(`Run ${runId} submitted.`);
        runs.watch(runId);
        byId("runs", HTMLElement).scrollIntoView({ behavior: "smooth" });
      })
      .catch(showError);
  });
}

async function submit(api: Api, text: string, inputLines: string, violations: HTMLUListElement): Promise<string | undefined> {
  const inputs = await parseInputs(api, inputLines);
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

/** `node.pin=text`, `node.pin=ref:<media id>` or `node.pin=json:<JSON>`, one per line. */
async function parseInputs(api: Api, lines: string): Promise<Record<string, PinValueInit>> {
  const inputs: Record<string, PinValueInit> = {};
  for (const line of lines.split("\n").map((l) => l.trim()).filter((l) => l !== "")) {
    const match = /^([^.=\s]+\.[^.=\s]+)=([\s\S]*)$/.exec(line);
    if (!match) throw new ConnectError(`input "${line}" must look like node.pin=value`, Code.InvalidArgument);
    const [, key = "", value = ""] = match;
    if (value.startsWith("ref:")) {
      const { ref } = await api.storage.stat({ refId: value.slice(4) });
      if (!ref) throw new ConnectError(`no media ${value.slice(4)}`, Code.NotFound);
      inputs[key] = { value: { case: "media", value: ref } };
    } else if (value.startsWith("json:")) {
      inputs[key] = { value: { case: "json", value: fromJsonString(ValueSchema, value.slice(5)) } };
    } else {
      inputs[key] = { value: { case: "text", value } };
    }
  }
  return inputs;
}
