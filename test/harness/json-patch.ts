import { isDeepStrictEqual } from "node:util";

// An RFC 6902 JSON Patch applier for tests: what the API server does with a mutating webhook's
// patch. No JSONPatch library is installed (`fast-json-patch` would be the one to add); this one
// implements all six operations and is checked against the RFC's appendix A (json-patch.test.ts).

export type JsonPatchOperation =
  | { readonly op: "add" | "replace" | "test"; readonly path: string; readonly value: unknown }
  | { readonly op: "remove"; readonly path: string }
  | { readonly op: "move" | "copy"; readonly from: string; readonly path: string };

type Container = Record<string, unknown> | unknown[];

/** Applies `patch` to a copy of `document`; throws (as the API server refuses the patch) on any failing operation. */
export function applyJsonPatch<T>(document: T, patch: readonly unknown[]): T {
  let root: unknown = structuredClone(document);
  for (const [i, raw] of patch.entries()) {
    const operation = checkedOperation(raw, i);
    root = applyOperation(root, operation, i);
  }
  return root as T;
}

function applyOperation(root: unknown, operation: JsonPatchOperation, i: number): unknown {
  switch (operation.op) {
    case "add":
      return add(root, operation.path, structuredClone(operation.value), i);
    case "remove":
      return remove(root, operation.path, i).root;
    case "replace":
      return add(remove(root, operation.path, i).root, operation.path, structuredClone(operation.value), i);
    case "move": {
      if (operation.path.startsWith(`${operation.from}/`))
        throw new Error(`operation ${i}: cannot move ${operation.from} into its own child ${operation.path}`);
      const removed = remove(root, operation.from, i);
      return add(removed.root, operation.path, removed.value, i);
    }
    case "copy":
      return add(root, operation.path, structuredClone(get(root, operation.from, i)), i);
    case "test":
      if (!isDeepStrictEqual(get(root, operation.path, i), operation.value)) throw new Error(`operation ${i}: test failed at ${operation.path}`);
      return root;
  }
}

function checkedOperation(raw: unknown, i: number): JsonPatchOperation {
  if (typeof raw !== "object" || raw === null) throw new Error(`operation ${i}: not an object`);
  const { op, path, from } = raw as Record<string, unknown>;
  if (typeof path !== "string") throw new Error(`operation ${i}: path must be a string`);
  if ((op === "add" || op === "replace" || op === "test") && !("value" in raw)) throw new Error(`operation ${i}: ${op} needs a value`);
  if ((op === "move" || op === "copy") && typeof from !== "string") throw new Error(`operation ${i}: ${op} needs from`);
  if (!["add", "remove", "replace", "move", "copy", "test"].includes(String(op))) throw new Error(`operation ${i}: unknown op ${String(op)}`);
  return raw as JsonPatchOperation;
}

/** RFC 6901 reference tokens. */
function tokensOf(pointer: string, i: number): string[] {
  if (pointer === "") return [];
  if (!pointer.startsWith("/")) throw new Error(`operation ${i}: "${pointer}" is not a JSON Pointer`);
  return pointer
    .slice(1)
    .split("/")
    .map((token) => token.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function isContainer(value: unknown): value is Container {
  return typeof value === "object" && value !== null;
}

function arrayIndex(array: unknown[], token: string, allowEnd: boolean, i: number): number {
  if (allowEnd && token === "-") return array.length;
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new Error(`operation ${i}: "${token}" is not an array index`);
  const index = Number(token);
  if (index > array.length || (!allowEnd && index === array.length)) throw new Error(`operation ${i}: index ${index} is out of bounds`);
  return index;
}

function parentOf(root: unknown, pointer: string, i: number): { parent: Container; last: string } {
  const tokens = tokensOf(pointer, i);
  const last = tokens.pop();
  if (last === undefined) throw new Error(`operation ${i}: the root has no parent`);
  const parent = tokens.reduce<unknown>((at, token) => child(at, token, i), root);
  if (!isContainer(parent)) throw new Error(`operation ${i}: ${pointer}: the parent is not an object or array`);
  return { parent, last };
}

function child(at: unknown, token: string, i: number): unknown {
  if (Array.isArray(at)) return at[arrayIndex(at, token, false, i)];
  if (isContainer(at) && Object.hasOwn(at, token)) return (at as Record<string, unknown>)[token];
  throw new Error(`operation ${i}: no member "${token}"`);
}

function get(root: unknown, pointer: string, i: number): unknown {
  return tokensOf(pointer, i).reduce<unknown>((at, token) => child(at, token, i), root);
}

function add(root: unknown, pointer: string, value: unknown, i: number): unknown {
  if (pointer === "") return value;
  const { parent, last } = parentOf(root, pointer, i);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, last, true, i), 0, value);
  else parent[last] = value;
  return root;
}

function remove(root: unknown, pointer: string, i: number): { root: unknown; value: unknown } {
  if (pointer === "") return { root: undefined, value: root };
  const { parent, last } = parentOf(root, pointer, i);
  if (Array.isArray(parent)) {
    const [value] = parent.splice(arrayIndex(parent, last, false, i), 1);
    return { root, value };
  }
  if (!Object.hasOwn(parent, last)) throw new Error(`operation ${i}: no member "${last}" to remove`);
  const value = parent[last];
  delete parent[last];
  return { root, value };
}
