// Plain-contract agent that lets tests count agent starts: appends its node id to the file
// params.ledger, then returns its `text` input with `>nodeId` appended. With params.fail_once (a
// marker file path) it fails (exit 1) the first time it runs, creating the marker, and succeeds after;
// with params.hang_once it hangs instead, the first time (to be cancelled).
import { appendFileSync, existsSync, writeFileSync } from "node:fs";
import { readInput } from "./read-input.mjs";

const { spec, context } = await readInput();
appendFileSync(spec.params.ledger, `${context.node_id}\n`);
if (spec.params.fail_once && !existsSync(spec.params.fail_once)) {
  writeFileSync(spec.params.fail_once, "");
  process.stderr.write(`${context.node_id} fails this once\n`);
  process.exit(1);
}
if (spec.params.hang_once && !existsSync(spec.params.hang_once)) {
  writeFileSync(spec.params.hang_once, "");
  setInterval(() => {}, 60_000);
} else {
  process.stdout.write(`${JSON.stringify({ result: { text: `${context.inputs.text ?? ""}>${context.node_id}` } })}\n`);
}
