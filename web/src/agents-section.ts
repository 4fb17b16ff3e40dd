import { toJson } from "@bufbuild/protobuf";
import { PinType } from "../../gen/mentatlab/v1/common_pb.js";
import { AgentManifestSchema, type AgentManifest, type Pin } from "../../gen/mentatlab/v1/registry_pb.js";
import type { Api } from "./api.js";
import { byId, el, enumWord, showError } from "./dom.js";

/** The table of registered agents, newest version of each; an agent's id opens its whole manifest. */
export function initAgentsSection(api: () => Api): { refresh(): Promise<void> } {
  const body = byId("agents-table", HTMLTableElement).tBodies[0];
  const refresh = async () => {
    try {
      const { agents } = await api().registry.listAgents({ pageSize: 500 });
      const rows = agents.map((a) =>
        el(
          "tr",
          { "data-agent": a.id },
          el("td", {}, manifestButton(a)),
          el("td", {}, a.version),
          el("td", {}, pins(a.inputs)),
          el("td", {}, pins(a.outputs)),
          el("td", {}, a.description),
        ),
      );
      body?.replaceChildren(...(rows.length > 0 ? rows : [el("tr", {}, el("td", { colspan: "5" }, "No agents registered yet."))]));
    } catch (err) {
      showError(err);
    }
  };
  byId("agents-refresh", HTMLButtonElement).addEventListener("click", () => void refresh());
  return { refresh };
}

function manifestButton(agent: AgentManifest): HTMLButtonElement {
  const button = el("button", { type: "button", class: "link", "aria-label": `Show the manifest of ${agent.id}` }, el("code", {}, agent.id));
  button.addEventListener("click", () => {
    byId("agent-manifest-title", HTMLElement).textContent = `Manifest of ${agent.id} ${agent.version}`;
    byId("agent-manifest-json", HTMLPreElement).textContent = JSON.stringify(toJson(AgentManifestSchema, agent), null, 2);
    const panel = byId("agent-manifest", HTMLDivElement);
    panel.hidden = false;
    panel.scrollIntoView({ block: "nearest" });
  });
  return button;
}

function pins(list: readonly Pin[]): string {
  return list.map((p) => `${p.name}: ${enumWord(PinType, p.type)}${p.required ? " *" : ""}`).join(", ") || "–";
}
