#!/usr/bin/env node
/**
 * `agent-sidecar -- <agent command…>`: prepares the node's inputs, runs the agent beside the
 * SidecarService, and exits with the agent's exit code once everything is delivered.
 * `agent-sidecar` alone serves the SidecarService until SIGTERM, for pods where the agent is its own
 * container (it then shares MENTATLAB_SIDECAR_TOKEN with the agent through a Secret).
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { loadSidecarConfig } from "./config.js";
import { runAgentWithSidecar, startSidecar } from "./sidecar.js";

async function main(argv: readonly string[]): Promise<number> {
  const separator = argv.indexOf("--");
  const command = separator === -1 ? [] : argv.slice(separator + 1);
  const config = loadSidecarConfig(process.env);
  if (command.length > 0) {
    const outcome = await runAgentWithSidecar(config, command);
    if (outcome.failure) process.stderr.write(`agent-sidecar: ${outcome.failure}\n`);
    return outcome.exitCode;
  }
  const sidecar = await startSidecar(config);
  // The agent container waits for this file before dialling: start-up ordering without a probe.
  await writeFile(join(config.sharedDir, "sidecar.ready"), `${sidecar.address}\n`);
  process.stderr.write(`agent-sidecar: serving on ${sidecar.address}\n`);
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
  });
  await sidecar.close();
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`agent-sidecar: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
