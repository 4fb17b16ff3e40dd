// A tiny agent in the original plain contract: {spec, context} on stdin, JSON event lines on stdout.
let input = "";
for await (const chunk of process.stdin) input += chunk;
const { context } = JSON.parse(input);
const text = String(context.inputs.text ?? "");
const emit = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);
emit({ type: "log", level: "info", message: `shouting ${text.length} characters` });
emit({ type: "progress", data: { percent: 50, message: "halfway" } });
emit({ result: { text: `${text.toUpperCase()}!` } });
