#!/usr/bin/env node
// Runs the TypeScript sources directly (no build step) through tsx's loader.
import { ensurePinnedNode } from "./pinned-node.mjs";

await ensurePinnedNode();
const { register } = await import("tsx/esm/api");
register();
await import("../services/cli/main.ts");
