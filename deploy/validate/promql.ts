/** PromQL words that look like identifiers but name no series. */
const keywords = new Set(["by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset", "inf", "nan"]);

/**
 * The series names an expression reads: identifiers that are not functions, keywords, label names
 * (in matchers or grouping clauses) or durations.
 */
export function seriesNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, "")
    .replace(/\[[^\]]*\]/g, "")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, "");
  const names = new Set<string>();
  for (const match of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const name = match[0];
    const start = match.index;
    const before = start > 0 ? stripped.charAt(start - 1) : "";
    if (/[0-9.]/.test(before)) continue;
    const after = stripped.slice(start + name.length).trimStart();
    if (after.startsWith("(") || keywords.has(name.toLowerCase())) continue;
    names.add(name);
  }
  return [...names];
}
