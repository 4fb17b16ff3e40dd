/** Kubernetes resource quantities (`500m`, `2`, `1Gi`, `1.5G`, `1e3`), as used in manifests' resources. */

const binarySuffixes: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
const decimalSuffixes: Record<string, number> = { n: 1e-9, u: 1e-6, m: 1e-3, "": 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };

const quantityPattern = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])|[eE]([+-]?\d+))?$/;

/** The quantity's value in base units (cores for CPU, bytes for memory), or undefined if it does not parse. */
export function parseQuantity(text: string): number | undefined {
  const match = quantityPattern.exec(text.trim());
  if (!match) return undefined;
  const [, number, suffix, exponent] = match;
  const base = Number(number);
  if (!Number.isFinite(base) || base < 0) return undefined;
  if (exponent !== undefined) return base * 10 ** Number(exponent);
  const multiplier = binarySuffixes[suffix ?? ""] ?? decimalSuffixes[suffix ?? ""];
  return multiplier === undefined ? undefined : base * multiplier;
}

/** Bytes as the largest binary unit that represents them exactly, e.g. `4Gi`, `1536Mi`. */
export function formatBytes(bytes: number): string {
  for (const [suffix, size] of [
    ["Ti", 2 ** 40],
    ["Gi", 2 ** 30],
    ["Mi", 2 ** 20],
    ["Ki", 2 ** 10],
  ] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${suffix}`;
  }
  return String(Math.ceil(bytes));
}

/** CPU cores as millicores, e.g. `500m`, `2000m`. */
export function formatMillicores(cores: number): string {
  return `${Math.ceil(cores * 1000)}m`;
}
