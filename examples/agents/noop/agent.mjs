#!/usr/bin/env node
// The smallest agent of the original plain contract: reads {"spec", "context"} on stdin, reports
// progress on stdout, and returns its `text` input unchanged as its `text` output.
let input = "";
for await (const chunk of process.stdin) input += chunk;
const { context } = JSON.parse(input);
const emit = (event) => process.stdout.write(`${JSON.stringify({ ts: new Date().toISOString(), ...event })}\n`);
emit({ type: "log", level: "info", message: `noop ${context.node_id}, attempt ${context.attempt}` });
emit({ type: "progress", data: { percent: 100, message: "done", eta_seconds: 0 } });
process.stdout.write(`${JSON.stringify({ result: { text: context.inputs.text ?? "" } })}\n`);
