import { type CelInput, CelScalar, type CelType, celEnv, isCelError, mapType, parse, plan } from "@bufbuild/cel";
import type { JsonValue } from "@bufbuild/protobuf";
import type { PinValue } from "../../gen/mentatlab/v1/common_pb.js";
import type { EdgeCondition } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { jsonOf } from "../../agent-contract/pin-values.js";
import { canonicalJson } from "./canonical-json.js";

/** What testing a condition against its source node's outputs found. */
export type ConditionResult = { readonly taken: true } | { readonly taken: false; readonly reason: string } | { readonly error: string };

/** A compiled edge condition. */
export interface EdgeTest {
  /** Tests the source node's outputs; `edgePin` is the pin the edge carries. */
  test(outputs: Readonly<Record<string, PinValue>>, node: string, edgePin: string): ConditionResult;
}

/** Longest expression accepted, in characters. */
export const maxExprLength = 1024;
/** Deepest nesting of comprehensions (all, exists, map, filter…): with bounded outputs this bounds the cost. */
const maxComprehensionDepth = 2;

// Declared loosely typed: outputs are whatever JSON the source's agent produced.
const variables: Record<string, CelType> = { outputs: mapType(CelScalar.STRING, CelScalar.DYN), value: CelScalar.DYN };
const env = celEnv({ variables });

type Expr = ReturnType<typeof parse>["expr"];

/**
 * Compiles a condition: `{pin, equals}` compares canonical JSON; `expr` is CEL over the source node's
 * outputs (`outputs.<pin>`, `value`). `outputPins` are the source's text and json pins, the only
 * ones an expression may read. A string says what is wrong with the expression.
 */
export function compileCondition(when: EdgeCondition, outputPins: readonly string[]): EdgeTest | string {
  if (!when.expr) return { test: (outputs, node, edgePin) => equalsTest(when, outputs, node, edgePin) };
  if (when.expr.length > maxExprLength) return `the expression is ${when.expr.length} characters long, more than ${maxExprLength}`;
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(when.expr);
  } catch (err) {
    return `the expression does not parse: ${err instanceof Error ? err.message : String(err)}`;
  }
  if (parsed.expr.exprKind.case === "constExpr" && parsed.expr.exprKind.value.constantKind.case !== "boolValue")
    return "the expression is a constant that is not true or false";
  const problem = checkExpr(parsed.expr, new Set(outputPins), new Set(), 0);
  if (problem) return problem;
  const evaluate = plan(env, parsed);
  return {
    test(outputs, node, edgePin) {
      const json = jsonOutputs(outputs);
      const result = evaluate({ outputs: json as CelInput, value: (json[edgePin] ?? null) as CelInput });
      if (isCelError(result)) return { error: `condition \`${when.expr}\` on ${node}'s outputs failed: ${result.message}` };
      if (typeof result !== "boolean") return { error: `condition \`${when.expr}\` on ${node}'s outputs gave ${String(result)}, not true or false` };
      return result ? { taken: true } : { taken: false, reason: `branch not taken: \`${when.expr}\` is false for ${node}` };
    },
  };
}

function equalsTest(when: EdgeCondition, outputs: Readonly<Record<string, PinValue>>, node: string, edgePin: string): ConditionResult {
  const pin = when.pin || edgePin;
  const value = jsonOutputs(outputs)[pin];
  const actual = value === undefined ? undefined : canonicalJson(value);
  const expected = when.equals ? canonicalJson(jsonOf(when.equals)) : "null";
  if (actual === expected) return { taken: true };
  return { taken: false, reason: `branch not taken: ${node}.${pin} is ${actual ?? "unset"}, not ${expected}` };
}

/** The text (as strings) and json outputs of a node, the values a condition sees. */
function jsonOutputs(outputs: Readonly<Record<string, PinValue>>): Record<string, JsonValue> {
  const json: Record<string, JsonValue> = {};
  for (const [pin, { value }] of Object.entries(outputs)) {
    if (value.case === "text") json[pin] = value.value;
    else if (value.case === "json") json[pin] = jsonOf(value.value);
  }
  return json;
}

/**
 * Checks what parsing cannot: every name is a declared variable or a comprehension's own, every
 * `outputs.<pin>` is a text or json output of the source, and comprehensions nest at most `maxComprehensionDepth` deep.
 */
function checkExpr(expr: Expr | undefined, pins: ReadonlySet<string>, bound: ReadonlySet<string>, depth: number): string | undefined {
  if (!expr) return undefined;
  const kind = expr.exprKind;
  switch (kind.case) {
    case "identExpr":
      if (kind.value.name === "outputs" || kind.value.name === "value" || bound.has(kind.value.name)) return undefined;
      return `unknown name "${kind.value.name}": use outputs.<pin> or value`;
    case "selectExpr": {
      const operand = kind.value.operand?.exprKind;
      if (operand?.case === "identExpr" && operand.value.name === "outputs" && !bound.has("outputs") && !pins.has(kind.value.field)) {
        return `outputs.${kind.value.field}: the source node has no text or json output "${kind.value.field}" (it has: ${[...pins].join(", ") || "none"})`;
      }
      return checkExpr(kind.value.operand, pins, bound, depth);
    }
    case "callExpr":
      for (const arg of [kind.value.target, ...kind.value.args]) {
        const problem = checkExpr(arg, pins, bound, depth);
        if (problem) return problem;
      }
      return undefined;
    case "listExpr":
      for (const element of kind.value.elements) {
        const problem = checkExpr(element, pins, bound, depth);
        if (problem) return problem;
      }
      return undefined;
    case "structExpr":
      for (const entry of kind.value.entries) {
        const problem =
          checkExpr(entry.value, pins, bound, depth) ?? (entry.keyKind.case === "mapKey" ? checkExpr(entry.keyKind.value, pins, bound, depth) : undefined);
        if (problem) return problem;
      }
      return undefined;
    case "comprehensionExpr": {
      const c = kind.value;
      if (depth + 1 > maxComprehensionDepth) return `comprehensions (all, exists, map, filter) nest more than ${maxComprehensionDepth} deep`;
      const inner = new Set([...bound, c.iterVar, c.iterVar2, c.accuVar].filter(Boolean));
      return (
        checkExpr(c.iterRange, pins, bound, depth) ??
        checkExpr(c.accuInit, pins, bound, depth) ??
        checkExpr(c.loopCondition, pins, inner, depth + 1) ??
        checkExpr(c.loopStep, pins, inner, depth + 1) ??
        checkExpr(c.result, pins, inner, depth + 1)
      );
    }
    default:
      return undefined;
  }
}
