// Plain-contract agent for mapped nodes: handles one item, its `text` input, and returns `<text>!`.
// It appends `start <text>` and `end <text>` to the file params.ledger, so tests can count starts and
// how many items ran at once. With params.gather it holds after starting until that many items are
// between start and end in the ledger (or 3 s passed), so a concurrency bound is actually reached
// rather than missed by process start-up jitter. Items listed in params.fail exit 1 (with
// params.fail_once only the first time); items in params.transient exit 3 the first time. "First
// time" is kept as marker files in the directory params.markers.
import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readInput } from "./read-input.mjs";

const { spec, context } = await readInput();
const { ledger, gather = 0, fail = [], fail_once: failOnce = false, transient = [], markers } = spec.params;
const item = context.inputs.text ?? "";
appendFileSync(ledger, `start ${item}\n`);

const inFlight = () => {
  let n = 0;
  for (const line of readFileSync(ledger, "utf8").split("\n")) n += line.startsWith("start ") ? 1 : line.startsWith("end ") ? -1 : 0;
  return n;
};
const deadline = Date.now() + 3000;
while (gather > 0 && inFlight() < gather && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));

const firstTime = () => {
  const marker = join(markers, `marker-${item}`);
  if (existsSync(marker)) return false;
  writeFileSync(marker, "");
  return true;
};
let code = 0;
if (fail.includes(item) && (!failOnce || firstTime())) code = 1;
else if (transient.includes(item) && firstTime()) code = 3;
appendFileSync(ledger, `end ${item}\n`);
if (code !== 0) {
  process.stderr.write(`item ${item} fails (exit ${code})\n`);
  process.exit(code);
}
process.stdout.write(`${JSON.stringify({ result: { text: `${item}!` } })}\n`);
