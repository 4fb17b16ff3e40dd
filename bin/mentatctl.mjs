#!/usr/bin/env node
// Runs the TypeScript sources directly: tsx compiles them on load, so there is no build step.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../services/cli/ctl/main.ts");
process.exitCode = await main(process.argv);
