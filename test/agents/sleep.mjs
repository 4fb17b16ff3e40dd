// Plain-contract agent: heartbeats every 100 ms for params.ms milliseconds, then returns its text input.
import { emit, readInput } from "./read-input.mjs";

const { spec, context } = await readInput();
const until = Date.now() + (spec.params?.ms ?? 1000);
emit({ type: "log", message: `sleeping, pid ${process.pid}` });
while (Date.now() < until) {
  emit({ type: "heartbeat" });
  await new Promise((r) => setTimeout(r, Math.min(100, Math.max(0, until - Date.now()))));
}
process.stdout.write(`${JSON.stringify({ result: { text: `slept: ${context.inputs.text ?? ""}` } })}\n`);
