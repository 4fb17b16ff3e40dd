// Plain-contract agent that writes params.base64 to a file and returns it as a local-file media output.
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readInput } from "./read-input.mjs";

const { spec, context } = await readInput();
const path = join(tmpdir(), `agent-out-${context.run_id}-${context.node_id}.bin`);
writeFileSync(path, Buffer.from(spec.params.base64, "base64"));
process.stdout.write(`${JSON.stringify({ result: { out: { path, mime_type: spec.params.mime_type } } })}\n`);
