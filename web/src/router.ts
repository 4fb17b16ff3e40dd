import { byId, el, showStatus } from "./dom.js";

/** A page of the app: the `<section data-page=…>` it shows, and what to start and stop with it. */
export interface Page {
  /** `param` is the rest of the hash after the page name, e.g. the run id of `#/runs/<id>`. */
  show?(param: string): void;
  hide?(): void;
}

/** The hash of a run's page. */
export function runHash(runId: string): string {
  return `#/runs/${encodeURIComponent(runId)}`;
}

/** A link to a run's page, showing its id. */
export function runLink(runId: string): HTMLAnchorElement {
  return el("a", { href: runHash(runId) }, el("code", {}, runId));
}

/** The page a hash names: `#/runs/abc` → `{ name: "runs", param: "abc" }`. */
export function parseHash(hash: string): { name: string; param: string } {
  const [name = "", ...rest] = hash.replace(/^#\/?/, "").split("/");
  return { name, param: decodeURIComponent(rest.join("/")) };
}

/**
 * Hash routing: one section shown at a time, the nav link of its page marked current, the page's
 * heading focused so keyboard and screen-reader users land on what changed.
 */
export function startRouter(pages: Record<string, Page>, fallback: string, ready: () => boolean): { route(): void } {
  let active: Page | undefined;
  const route = () => {
    // Before sign-in no page can load anything; sign-in routes once the key is accepted.
    if (!ready()) return;
    let { name, param } = parseHash(location.hash);
    // `#/runs/<id>` is the run page; the list is `#/runs`.
    if (name === "runs" && param !== "") name = "run";
    if (!(name in pages)) {
      location.replace(`#/${fallback}`);
      return;
    }
    active?.hide?.();
    // A message about the page left behind would read as news about the page arrived at.
    if (pages[name] !== active) showStatus("");
    for (const section of document.querySelectorAll<HTMLElement>("[data-page]")) section.hidden = section.dataset.page !== name;
    for (const link of byId("nav", HTMLElement).querySelectorAll("a")) {
      const linked = parseHash(link.getAttribute("href") ?? "").name;
      if (linked === name || (name === "run" && linked === "runs")) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    active = pages[name];
    active?.show?.(param);
    document.querySelector<HTMLElement>(`[data-page="${name}"] h2`)?.focus({ preventScroll: true });
  };
  addEventListener("hashchange", route);
  return { route };
}
