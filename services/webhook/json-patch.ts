/** The RFC 6902 operations the webhook emits (it only ever adds). */
export interface AddOperation {
  readonly op: "add";
  readonly path: string;
  readonly value: unknown;
}

/** A JSON Pointer (RFC 6901) from its reference tokens. */
export function pointer(...tokens: readonly (string | number)[]): string {
  return tokens.map((token) => `/${String(token).replace(/~/g, "~0").replace(/\//g, "~1")}`).join("");
}

/**
 * Adds `items` to the array at `tokens`: one `add` of the whole array when the field is absent
 * (a JSON Patch cannot append to what does not exist), else one append (`/-`) per item.
 */
export function appendAll(existing: readonly unknown[] | undefined, tokens: readonly (string | number)[], items: readonly unknown[]): AddOperation[] {
  if (items.length === 0) return [];
  if (existing === undefined) return [{ op: "add", path: pointer(...tokens), value: items }];
  return items.map((value) => ({ op: "add", path: `${pointer(...tokens)}/-`, value }));
}
