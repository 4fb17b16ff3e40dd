// Runtime-neutral (no node: imports): mentatctl and the web UI's esbuild bundle both use it.

const units = ["B", "KiB", "MiB", "GiB", "TiB"];

/** A byte count for people: whole bytes below 1 KiB, else one decimal of the largest binary unit, e.g. `1.5 MiB`. */
export function formatBytes(bytes: number | bigint): string {
  let value = Number(bytes);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}
