/** Payload of tick `n`: its number, so a consumer can check order and completeness. */
export function tick(n: number): string {
  return `tick ${String(n).padStart(4, "0")}\n`;
}
