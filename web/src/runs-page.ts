import { timestampDate } from "@bufbuild/protobuf/wkt";
import { RunState, type FlowMeta, type Run } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import type { Api } from "./api.js";
import { byId, el, enumWord, showError } from "./dom.js";
import { runLink } from "./router.js";
import { formatDuration } from "./run-model.js";

/** Most ListRuns pages read for one screen while a flow filter skips non-matching runs. */
const maxPagesPerScreen = 10;
/** ListRuns is one cheap call: polling it every second keeps the list within a second of the truth. */
const refreshEveryMs = 1000;

export interface RunsPage {
  show(): void;
  hide(): void;
}

/** One screen of runs: what is shown and the token of the next one. */
interface Screen {
  readonly runs: Listed[];
  readonly nextToken: string;
}

/**
 * ListRuns leaves each run's flow out to keep pages small; its name comes from GetRun, once per
 * run, since a run's flow never changes.
 */
class FlowNames {
  readonly #known = new Map<string, Promise<FlowMeta | undefined>>();

  of(api: Api, runId: string): Promise<FlowMeta | undefined> {
    let meta = this.#known.get(runId);
    if (!meta) {
      meta = api.orchestrator.getRun({ runId }).then(({ run }) => run?.flow?.meta);
      // A failed look-up is asked again on the next refresh instead of being remembered.
      meta.catch(() => this.#known.delete(runId));
      this.#known.set(runId, meta);
    }
    return meta;
  }
}

/** A run of the list with the name and id of its flow. */
interface Listed {
  readonly run: Run;
  readonly flow: FlowMeta | undefined;
}

/**
 * The runs list: ListRuns in pages, filtered by state (on the server) and by flow id or name (here,
 * reading further pages until a screen is full), refreshed every second while shown.
 */
export function initRunsPage(api: () => Api): RunsPage {
  const stateFilter = byId("runs-state", HTMLSelectElement);
  const flowFilter = byId("runs-flow", HTMLInputElement);
  const pageSize = byId("runs-page-size", HTMLSelectElement);
  const previous = byId("runs-previous", HTMLButtonElement);
  const next = byId("runs-next", HTMLButtonElement);
  const body = byId("runs-table", HTMLTableElement).tBodies[0] as HTMLTableSectionElement;
  for (const state of [RunState.PENDING, RunState.RUNNING, RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED]) {
    stateFilter.append(el("option", { value: String(state) }, enumWord(RunState, state)));
  }
  /** Tokens of the screens before this one, so Previous can go back. */
  const tokens: string[] = [];
  let token = "";
  let nextToken = "";
  let timer: ReturnType<typeof setInterval> | undefined;
  let loading = 0;
  const names = new FlowNames();

  const load = async () => {
    const ticket = ++loading;
    try {
      const screen = await readScreen(
        api(),
        names,
        Number(pageSize.value),
        stateFilter.value === "" ? [] : [Number(stateFilter.value) as RunState],
        flowFilter.value.trim().toLowerCase(),
        token,
      );
      // A slower answer to an older query must not replace a newer one.
      if (ticket !== loading) return;
      nextToken = screen.nextToken;
      next.disabled = nextToken === "";
      previous.disabled = tokens.length === 0;
      updateRows(body, screen.runs.length > 0 ? screen.runs.map(runRow) : [el("tr", {}, el("td", { colspan: "5" }, "No runs match."))]);
    } catch (err) {
      showError(err);
    }
  };
  const restart = () => {
    tokens.length = 0;
    token = "";
    void load();
  };
  stateFilter.addEventListener("change", restart);
  flowFilter.addEventListener("input", restart);
  pageSize.addEventListener("change", restart);
  next.addEventListener("click", () => {
    tokens.push(token);
    token = nextToken;
    void load();
  });
  previous.addEventListener("click", () => {
    token = tokens.pop() ?? "";
    void load();
  });
  return {
    show() {
      void load();
      clearInterval(timer);
      timer = setInterval(() => void load(), refreshEveryMs);
    },
    hide() {
      clearInterval(timer);
      timer = undefined;
    },
  };
}

async function readScreen(api: Api, names: FlowNames, pageSize: number, states: RunState[], flow: string, pageToken: string): Promise<Screen> {
  const runs: Listed[] = [];
  let token = pageToken;
  for (let page = 0; page < maxPagesPerScreen; page++) {
    const answer = await api.orchestrator.listRuns({ states, pageSize, pageToken: token });
    const listed = await Promise.all(answer.runs.map(async (run) => ({ run, flow: await names.of(api, run.runId) })));
    runs.push(
      ...listed.filter((entry) => flow === "" || flowName(entry.flow).toLowerCase().includes(flow) || (entry.flow?.id ?? "").toLowerCase().includes(flow)),
    );
    token = answer.nextPageToken;
    if (token === "" || runs.length >= pageSize) break;
  }
  return { runs, nextToken: token };
}

function flowName(meta: FlowMeta | undefined): string {
  return meta?.name || meta?.id || "(unnamed flow)";
}

function runRow({ run, flow }: Listed): HTMLTableRowElement {
  const word = enumWord(RunState, run.state);
  const created = run.createdAt ? timestampDate(run.createdAt) : undefined;
  const ended = run.endedAt ? timestampDate(run.endedAt) : undefined;
  return el(
    "tr",
    { "data-run": run.runId },
    el("td", {}, runLink(run.runId)),
    el("td", {}, flowName(flow)),
    el("td", {}, el("span", { class: `badge state-${word}` }, word)),
    el("td", {}, created ? created.toLocaleString() : "–"),
    el("td", {}, created ? formatDuration(created, ended) : "–"),
  );
}

/**
 * Replaces only the rows that changed, and gives focus back to the run link that had it: the list
 * refreshes every second, and a keyboard user's place in it must survive that.
 */
function updateRows(body: HTMLTableSectionElement, rows: HTMLTableRowElement[]): void {
  const active = document.activeElement;
  const focusedRun = active instanceof HTMLElement && body.contains(active) ? active.closest("tr")?.dataset.run : undefined;
  rows.forEach((row, index) => {
    const old = body.rows.item(index);
    if (!old) body.append(row);
    else if (!old.isEqualNode(row)) old.replaceWith(row);
  });
  while (body.rows.length > rows.length) body.rows.item(rows.length)?.remove();
  if (focusedRun && !body.contains(document.activeElement)) body.querySelector<HTMLElement>(`tr[data-run="${CSS.escape(focusedRun)}"] a`)?.focus();
}
