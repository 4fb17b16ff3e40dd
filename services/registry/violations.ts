import { create } from "@bufbuild/protobuf";
import { type Violation, ViolationSchema } from "../../gen/mentatlab/v1/common_pb.js";

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

/** One line per violation, for error messages that must stand on their own. */
export function describeViolations(violations: readonly Violation[]): string {
  return violations.map((v) => `${v.fieldPath || "(document)"}: ${v.message} (${v.hint}) [${v.rule}]`).join("; ");
}
