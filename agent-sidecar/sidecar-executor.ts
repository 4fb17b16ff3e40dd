import { mkdir, rm } from "node:fs/promises";
import { isAbsolute, join, resolve } from "node:path";
import type { Executor, ExecutorEvent, NodeTask } from "../services/orchestrator/executor.js";
import { loadSidecarConfig } from "./config.js";
import { transientExitCode } from "./plain-agent.js";
import { runAgentWithSidecar } from "./sidecar.js";
import { sidecarEnv } from "./task-env.js";

export interface SidecarExecutorOptions {
  /** The gateway the sidecars call (known only once the server listens, hence a function). */
  readonly gatewayUrl: () => string;
  /** Each attempt gets a shared directory under here, removed when the attempt ends. */
  readonly workRoot: string;
  /** Environment every agent inherits (PATH, HOME…), below its manifest's env. */
  readonly baseEnv?: Readonly<Record<string, string | undefined>>;
}

/**
 * Runs each node attempt as a local child process with an in-process sidecar beside it: the sidecar
 * downloads the inputs, serves the agent the SidecarService (for SDK agents), speaks the plain contract
 * (for original agents), uploads outputs and relays streams through the gateway with the node's run
 * token. Agent events reach the orchestrator through ReportNodeEvents; the outcome is yielded here.
 */
export class SidecarExecutor implements Executor {
  constructor(private readonly options: SidecarExecutorOptions) {}

  async *execute(task: NodeTask, signal: AbortSignal): AsyncIterable<ExecutorEvent> {
    const [program, ...args] = task.agent.command;
    if (!program) {
      yield { kind: "failed", reason: `agent ${task.agent.id}@${task.agent.version} has no command for local runs`, transient: false };
      return;
    }
    const cwd = task.agent.workingDir || process.cwd();
    const sharedDir = join(this.options.workRoot, `${task.runId}-${task.nodeId}-${task.attempt}`);
    await mkdir(sharedDir, { recursive: true });
    try {
      const config = loadSidecarConfig(
        sidecarEnv({
          runId: task.runId,
          nodeId: task.nodeId,
          attempt: task.attempt,
          workspace: task.workspace,
          agentId: task.agent.id,
          agentVersion: task.agent.version,
          gatewayUrl: this.options.gatewayUrl(),
          runToken: task.runToken,
          sharedDir,
          inputs: task.inputs,
          params: task.params,
          outputPins: Object.fromEntries(task.agent.outputs.map((pin) => [pin.name, pin.type])),
          outputStreams: task.outputStreams,
        }),
      );
      const command = [program.includes("/") && !isAbsolute(program) ? resolve(cwd, program) : program, ...args];
      const outcome = await runAgentWithSidecar(config, command, {
        baseEnv: { ...this.options.baseEnv, ...task.agent.env },
        signal: AbortSignal.any([signal, AbortSignal.timeout(task.timeoutMs)]),
        cwd,
      });
      if (signal.aborted) return;
      if (outcome.exitCode === 0) yield { kind: "succeeded", outputs: outcome.outputs };
      else yield { kind: "failed", reason: outcome.failure ?? "agent failed", transient: outcome.exitCode === transientExitCode };
    } finally {
      await rm(sharedDir, { recursive: true, force: true });
    }
  }
}
