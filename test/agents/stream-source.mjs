// Plain-contract agent with a stream output: logs the stream it was given, keeps running params.ms, and
// returns nothing, or with params.fail exits 1; it never writes to nor ends the stream itself.
import { emit, readInput } from "./read-input.mjs";

const { spec, context } = await readInput();
emit({ type: "log", message: `publishing to ${context.output_streams.live?.streamId}` });
await new Promise((r) => setTimeout(r, spec.params?.ms ?? 1000));
if (spec.params?.fail) {
  emit({ type: "error", message: "gave up before writing anything" });
  process.exit(1);
}
process.stdout.write(`${JSON.stringify({ result: {} })}\n`);
