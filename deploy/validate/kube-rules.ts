import * as k8s from "@kubernetes/client-node";

// Rules the API server enforces that the OpenAPI schemas (kubernetes-models) do not: names, label
// syntax, and fields nobody declared. Shared by the deploy manifests' checks and the fake API server
// the Kubernetes executor is tested against.

export const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const dns1123Subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const labelValuePattern = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const labelKeyPattern = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

interface ClientModel {
  getAttributeTypeMap(): { baseName: string; type: string }[];
}

/**
 * Fields the client library's models (`V1Job`, …) do not know, found by walking their attribute maps.
 * The schemas accept any extra field; the API server prunes or rejects them, so a typo goes unnoticed.
 */
export function unknownFields(value: unknown, type: string, at: string): string[] {
  if (value === null || value === undefined) return [];
  const array = /^Array<(.+)>$/.exec(type);
  if (array) return Array.isArray(value) ? value.flatMap((item, i) => unknownFields(item, array[1] ?? "", `${at}[${i}]`)) : [];
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) return typeof value === "object" ? Object.entries(value).flatMap(([k, v]) => unknownFields(v, map[1] ?? "", `${at}.${k}`)) : [];
  const model = (k8s as unknown as Record<string, ClientModel | undefined>)[type];
  if (typeof model?.getAttributeTypeMap !== "function" || typeof value !== "object") return [];
  const attributes = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  return Object.entries(value).flatMap(([key, field]) => {
    const fieldType = attributes.get(key);
    return fieldType === undefined ? [`${at}.${key}: unknown field`] : unknownFields(field, fieldType, `${at}.${key}`);
  });
}

/** Label keys and values, and annotation keys, that the API server would refuse. */
export function labelProblems(
  meta: { readonly labels?: Record<string, string>; readonly annotations?: Record<string, string> } | undefined,
  at: string,
): string[] {
  const problems: string[] = [];
  for (const [key, value] of Object.entries(meta?.labels ?? {})) {
    if (!labelKeyPattern.test(key)) problems.push(`${at}.labels: bad key "${key}"`);
    if (typeof value !== "string" || value.length > 63 || !labelValuePattern.test(value)) problems.push(`${at}.labels[${key}]: bad value "${String(value)}"`);
  }
  for (const key of Object.keys(meta?.annotations ?? {})) if (!labelKeyPattern.test(key)) problems.push(`${at}.annotations: bad key "${key}"`);
  return problems;
}
