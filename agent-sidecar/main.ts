#!/usr/bin/env node
/**
 * `agent-sidecar -- <agent command…>`: prepares the node's inputs, runs the agent beside the
 * SidecarService, and exits with the agent's exit code once everything is delivered. Inputs come from
 * MENTATLAB_INPUTS_JSON or, when a plain-contract executor started it, from `{"spec", "context"}` on
 * stdin; in that case the outputs are also printed as the contract's final `{"result": …}` line.
 * `agent-sidecar` alone serves the SidecarService until SIGTERM, for pods where the agent is its own
 * container (it then shares MENTATLAB_SIDECAR_TOKEN with the agent through a Secret). With
 * MENTATLAB_PLAIN_BRIDGE set it runs that container's plain-contract agent through the file bridge.
 * With MENTATLAB_WARM_WORKER=1 and a command it is a warm worker: it serves the agent one node attempt
 * after another, read as lines on stdin (agent-sidecar/warm-worker.ts, docs/warm-agents.md).
 */
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { text } from "node:stream/consumers";
import { loadSidecarConfig, type SidecarConfig } from "./config.js";
import { parsePlainInvocation, plainResult, withPlainInvocation } from "./plain-invocation.js";
import { bridgeDelivered, markBridgeDelivered } from "./plain-bridge.js";
import { runAgentWithSidecar, runBridgedAgentWithSidecar, startSidecar } from "./sidecar.js";
import { runWarmWorker } from "./warm-worker.js";
import { warmWorkerEnvName } from "../agent-contract/warm-protocol.js";

async function main(argv: readonly string[]): Promise<number> {
  const separator = argv.indexOf("--");
  const command = separator === -1 ? [] : argv.slice(separator + 1);
  if (command.length > 0 && process.env[warmWorkerEnvName] === "1") {
    return runWarmWorker(process.env, command, {
      input: process.stdin,
      output: process.stdout,
      log: (line) => process.stderr.write(`${line}\n`),
      cwd: process.cwd(),
    });
  }
  let config = loadSidecarConfig(process.env);
  if (command.length > 0) {
    // Started by a plain-contract executor: the node's inputs come on stdin and the outputs go back as
    // the final {"result": …} line, so any such executor runs SDK agents unchanged.
    const stdin = process.stdin.isTTY ? "" : await text(process.stdin);
    const plain = stdin.trim() !== "";
    if (plain) config = withPlainInvocation(config, parsePlainInvocation(stdin));
    // The agent's relative paths mean what they mean to the executor that started the sidecar.
    const outcome = await runAgentWithSidecar(config, command, { cwd: process.cwd(), baseEnv: process.env });
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
  if (config.plainBridge) return runBridge(config.plainBridge, config);
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

/**
 * Bridge mode, as a native sidecar: kubelet restarts a native sidecar that exits while the agent
 * container runs, and SIGTERMs it only after the agent container ended. So the sidecar delivers
 * everything first, then marks the bridge delivered (the agent container waits for that before it
 * exits), then waits for SIGTERM. A SIGTERM earlier (Job deadline or deletion) stops following the agent,
 * and the failure is reported and flushed before exiting.
 */
async function runBridge(dir: string, config: SidecarConfig): Promise<number> {
  const stopped = new AbortController();
  // Signal listeners alone do not keep Node running once the SidecarService is closed.
  const keepAlive = setInterval(() => undefined, 60_000);
  const terminated = new Promise<void>((resolve) => {
    const stop = () => {
      clearInterval(keepAlive);
      stopped.abort();
      resolve();
    };
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
  // Restarted after delivering: running again would report the node twice.
  if (!(await bridgeDelivered(dir))) {
    const outcome = await runBridgedAgentWithSidecar(config, dir, {
      signal: stopped.signal,
      onReady: (sidecar) => writeFile(join(config.sharedDir, "sidecar.ready"), `${sidecar.address}\n`),
    });
    if (outcome.failure) process.stderr.write(`agent-sidecar: ${outcome.failure}\n`);
    await markBridgeDelivered(dir);
  }
  await terminated;
  // The node's outcome is in its reports; a native sidecar's own exit code decides nothing.
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`agent-sidecar: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
