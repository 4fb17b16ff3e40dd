// Plain-contract agent: fails transiently (exit 3) until attempt params.succeed_on, then echoes its text input.
import { emit, readInput } from "./read-input.mjs";

const { spec, context } = await readInput();
if (context.attempt < (spec.params?.succeed_on ?? 2)) {
  emit({ type: "error", message: `busy on attempt ${context.attempt}` });
  process.exit(3);
}
process.stdout.write(`${JSON.stringify({ result: { text: `ok on attempt ${context.attempt}: ${context.inputs.text ?? ""}` } })}\n`);
