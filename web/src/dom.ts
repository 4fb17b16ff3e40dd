import { Code, ConnectError } from "@connectrpc/connect";

/** The element with `id`, typed; a missing one is a bug in index.html, so it throws. */
export function byId<T extends HTMLElement>(id: string, type: new () => T): T {
  const found = document.getElementById(id);
  if (!(found instanceof type)) throw new Error(`index.html has no <${type.name}> #${id}`);
  return found;
}

/** Creates an element with text content or children; strings are always set as text, never as HTML. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<Record<string, string>> = {},
  ...children: Array<Node | string>
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) if (value !== undefined) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

/** Shows a message in the page's live status line. */
export function showStatus(message: string, kind: "info" | "error" = "info"): void {
  const status = byId("status", HTMLParagraphElement);
  status.textContent = message;
  status.className = kind === "error" ? "error" : "";
}

export function showError(err: unknown): void {
  showStatus(describeError(err), "error");
}

export function describeError(err: unknown): string {
  if (err instanceof ConnectError) return `${Code[err.code] ?? err.code}: ${err.rawMessage}`;
  return err instanceof Error ? err.message : String(err);
}

/** A generated enum's value as words, e.g. `RunState.SUCCEEDED` → `succeeded`. */
export function enumWord(values: Record<number, string>, value: number): string {
  return (values[value] ?? String(value)).toLowerCase().replaceAll("_", " ");
}
