// Plain-contract agent: reports the CPU priority (niceness) it runs at, and that of a process it starts.
import { execFileSync } from "node:child_process";
import { getPriority } from "node:os";
import { readInput } from "./read-input.mjs";

await readInput();
const child = Number(execFileSync(process.execPath, ["-e", "process.stdout.write(String(require('node:os').getPriority()))"], { encoding: "utf8" }));
process.stdout.write(`${JSON.stringify({ result: { nice: { own: getPriority(), child } } })}\n`);
