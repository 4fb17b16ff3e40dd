// Plain-contract agent with a stream input: returns the id of the StreamRef it received.
import { readInput } from "./read-input.mjs";

const { context } = await readInput();
process.stdout.write(`${JSON.stringify({ result: { text: context.inputs.live.streamId } })}\n`);
