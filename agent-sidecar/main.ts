#!/usr/bin/env node
/**
 * `agent-sidecar -- <agent command…>`: prepares the node's inputs, runs the agent beside the
 * SidecarService, and exits with the agent's exit code once everything is delivered. Inputs come from
 * MENTATLAB_INPUTS_JSON or, when a plain-contract executor started it, from `{"spec", "context"}` on
 * stdin; in that case the outputs are also printed as the contract's final `{"result": …}` line.
 * `agent-sidecar` alone serves the SidecarService until SIGTERM, for pods where the agent is its own
 * container (it then shares MENTATLAB_SIDECAR_TOKEN with the agent through a Secret).
 */
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { text } from "node:stream/consumers";
import { loadSidecarConfig } from "./config.js";
import { parsePlainInvocation, plainResult, withPlainInvocation } from "./plain-invocation.js";
import { runAgentWithSidecar, startSidecar } from "./sidecar.js";

async function main(argv: readonly string[]): Promise<number> {
  const separator = argv.indexOf("--");
  const command = separator === -1 ? [] : argv.slice(separator + 1);
  let config = loadSidecarConfig(process.env);
  if (command.length > 0) {
    // Started by a plain-contract executor: the node's inputs come on stdin and the outputs go back as
    // the final {"result": …} line, so any such executor runs SDK agents unchanged.
    const stdin = process.stdin.isTTY ? "" : await text(process.stdin);
    const plain = stdin.trim() !== "";
    if (plain) config = withPlainInvocation(config, parsePlainInvocation(stdin));
    // The agent's relative paths mean what they mean to the executor that started the sidecar.
    const outcome = await runAgentWithSidecar(config, command, { cwd: process.cwd() });
    // A shared dir the sidecar picked itself is scratch space of this attempt only.
    if (!process.env.MENTATLAB_SHARED_DIR) await rm(config.sharedDir, { recursive: true, force: true });
    if (outcome.failure) {
      process.stderr.write(`agent-sidecar: ${outcome.failure}\n`);
      if (plain) process.stdout.write(`${JSON.stringify({ type: "error", message: outcome.failure })}\n`);
    } else if (plain) {
      process.stdout.write(`${JSON.stringify(plainResult(outcome.outputs))}\n`);
    }
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
