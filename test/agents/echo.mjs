// Plain-contract agent: logs, reports progress, and returns its `text` input with params.suffix appended.
import { emit, readInput } from "./read-input.mjs";

const { spec, context } = await readInput();
emit({ type: "log", level: "info", message: `echo ${context.node_id} attempt ${context.attempt}`, correlation_id: "c-1" });
emit({ type: "progress", data: { percent: 50, message: "halfway", eta_seconds: 1 } });
console.log("not json: kept as a log line");
emit({ type: "metric", data: { name: "chars", value: String(context.inputs.text ?? "").length } });
const text = `${context.inputs.text ?? ""}${spec.params?.suffix ?? ""}`;
process.stdout.write(`${JSON.stringify({ result: { text, spec_seen: { agent_id: spec.agent_id, params: spec.params } } })}\n`);
