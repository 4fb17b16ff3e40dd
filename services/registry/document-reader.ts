import type { JsonValue } from "@bufbuild/protobuf";
import { parse as parseYaml } from "yaml";
import { isRecord, type JsonRecord } from "../../agent-contract/json-record.js";
import type { Violations } from "./violations.js";

/** Parses YAML or JSON text (JSON is YAML) into a plain value, recording a syntax error as a violation. */
export function parseDocument(text: string, violations: Violations): JsonValue | undefined {
  try {
    return parseYaml(text, { maxAliasCount: 100 }) as JsonValue;
  } catch (err) {
    violations.add(
      "",
      "document.syntax",
      `not valid YAML or JSON: ${err instanceof Error ? err.message : String(err)}`,
      "fix the syntax at the position given",
    );
    return undefined;
  }
}

/**
 * The top-level mapping of a hand-written document (a `what`: "flow", "manifest") as a RecordReader;
 * undefined when the text is not valid YAML or JSON or not a mapping, with the violation recorded and
 * `hint` saying how such a document starts.
 */
export function readDocumentRecord(text: string, violations: Violations, what: string, hint: string): RecordReader | undefined {
  const document = parseDocument(text, violations);
  if (document === undefined) return undefined;
  if (!isRecord(document)) {
    violations.add("", "document.shape", `a ${what} must be a mapping of fields`, hint);
    return undefined;
  }
  return new RecordReader(document, "", violations);
}

/**
 * Reads the fields of one object of a hand-written document, accepting several spellings of a field
 * (the original project's camelCase and our snake_case), type-checking each and flagging unknown
 * fields, which are most often typos that would otherwise be silently ignored.
 */
export class RecordReader {
  private readonly seen = new Set<string>();

  constructor(
    private readonly record: JsonRecord,
    readonly path: string,
    private readonly violations: Violations,
  ) {}

  child(field: string): string {
    return this.path ? `${this.path}.${field}` : field;
  }

  /** The raw value of the first present alias; `field` is the canonical (snake_case) name used in paths. */
  raw(field: string, ...aliases: string[]): JsonValue | undefined {
    for (const name of [field, ...aliases]) {
      this.seen.add(name);
      if (name in this.record) return this.record[name];
    }
    return undefined;
  }

  string(field: string, ...aliases: string[]): string {
    const value = this.raw(field, ...aliases);
    if (value === undefined || value === null) return "";
    if (typeof value === "string") return value;
    if (typeof value === "number") return String(value);
    this.violations.add(this.child(field), "field.type", `must be a string, got ${describe(value)}`, `write ${field} as a quoted string`);
    return "";
  }

  boolean(field: string, ...aliases: string[]): boolean {
    const value = this.raw(field, ...aliases);
    if (value === undefined || value === null) return false;
    if (typeof value === "boolean") return value;
    this.violations.add(this.child(field), "field.type", `must be true or false, got ${describe(value)}`, `write ${field}: true or ${field}: false`);
    return false;
  }

  number(field: string, ...aliases: string[]): number {
    const value = this.raw(field, ...aliases);
    if (value === undefined || value === null) return 0;
    if (typeof value === "number" && Number.isFinite(value) && value >= 0) return value;
    this.violations.add(
      this.child(field),
      "field.type",
      `must be a non-negative number, got ${describe(value)}`,
      `write ${field} as a plain number such as 1024`,
    );
    return 0;
  }

  array(field: string, ...aliases: string[]): JsonValue[] {
    const value = this.raw(field, ...aliases);
    if (value === undefined || value === null) return [];
    if (Array.isArray(value)) return value;
    this.violations.add(this.child(field), "field.type", `must be a list, got ${describe(value)}`, `write ${field} as a YAML list (- item) or JSON array`);
    return [];
  }

  /** A list of strings; a single string is accepted as a one-item list. */
  strings(field: string, ...aliases: string[]): string[] {
    const value = this.raw(field, ...aliases);
    if (typeof value === "string") return [value];
    if (value === undefined || value === null) return [];
    const items = Array.isArray(value) ? value : undefined;
    if (!items || items.some((item) => typeof item !== "string")) {
      this.violations.add(this.child(field), "field.type", `must be a list of strings, got ${describe(value)}`, `write ${field} as a list of quoted strings`);
      return [];
    }
    return items as string[];
  }

  object(field: string, ...aliases: string[]): JsonRecord | undefined {
    const value = this.raw(field, ...aliases);
    if (value === undefined || value === null) return undefined;
    if (isRecord(value)) return value;
    this.violations.add(this.child(field), "field.type", `must be a mapping, got ${describe(value)}`, `write ${field} as key: value pairs`);
    return undefined;
  }

  /** Reports fields never asked for; call after reading every known field. */
  rejectUnknown(): void {
    for (const key of Object.keys(this.record)) {
      if (!this.seen.has(key)) {
        this.violations.add(this.child(key), "field.unknown", `unknown field "${key}"`, "remove it or check its spelling against the documented fields");
      }
    }
  }
}

function describe(value: JsonValue): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  return typeof value === "object" ? "a mapping" : `${typeof value} ${JSON.stringify(value)}`;
}
