#!/usr/bin/env node
// Runs the TypeScript sources directly: tsx compiles them on load, so there is no build step.
import { ensurePinnedNode } from "./pinned-node.mjs";

await ensurePinnedNode();
const { register } = await import("tsx/esm/api");
register();
const { main } = await import("../services/cli/ctl/main.ts");
process.exitCode = await main(process.argv);
