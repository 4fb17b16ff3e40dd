// Plain-contract agent with a stream output: logs the stream it was given, keeps running params.ms, returns nothing.
import { emit, readInput } from "./read-input.mjs";

const { spec, context } = await readInput();
emit({ type: "log", message: `publishing to ${context.output_streams.live?.streamId}` });
await new Promise((r) => setTimeout(r, spec.params?.ms ?? 1000));
process.stdout.write(`${JSON.stringify({ result: {} })}\n`);
