import { create } from "@bufbuild/protobuf";
import { type Violation, ViolationSchema } from "../../gen/mentatlab/v1/common_pb.js";
import { listViolations } from "../shared/violation-list.js";

/** Collects every problem found while reading or validating a document, so all are reported at once. */
export class Violations {
  readonly list: Violation[] = [];

  add(fieldPath: string, rule: string, message: string, hint: string): void {
    this.list.push(create(ViolationSchema, { fieldPath, rule, message, hint }));
  }

  get empty(): boolean {
    return this.list.length === 0;
  }
}

function clause(v: Violation): string {
  return `${v.fieldPath || "(document)"}: ${v.message} (${v.hint}) [${v.rule}]`;
}

/** The first violations, one clause each, then how many more: bounded, for messages that must stand on their own. */
export function describeViolations(violations: readonly Violation[]): string {
  return listViolations("", violations.map(clause)).message;
}

/**
 * What an error refusing a document carries: `<what> has N violation(s): …` with the first ones, and
 * those same ones for the details. Message and details share the gRPC trailer, so both are bounded;
 * `validateRpc` is where a client gets every one.
 */
export function violationsError(what: string, violations: readonly Violation[], validateRpc: string): { message: string; listed: Violation[] } {
  const { message, listed } = listViolations(`${what} has ${violations.length} violation(s): `, violations.map(clause));
  const more = listed < violations.length ? ` (${validateRpc} lists every one)` : "";
  return { message: `${message}${more}`, listed: violations.slice(0, listed) };
}
