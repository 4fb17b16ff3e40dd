import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { FinishAttemptRequest, NextAttemptResponse, SidecarService } from "../gen/mentatlab/v1/sidecar_pb.js";
import type { StreamService } from "../gen/mentatlab/v1/stream_pb.js";
import { transientExitCode } from "../agent-contract/plain-contract.js";
import { gatewayUrlOf } from "../agent-contract/sidecar-env.js";
import { attemptEndLine, parseAttemptLine, warmReadyLine, warmWorkerEnvName } from "../agent-contract/warm-protocol.js";
import { deferred, type Deferred } from "../services/shared/deferred.js";
import { loadSidecarConfig, type Env } from "./config.js";
import { parsePlainInvocation, plainResult, withPlainInvocation } from "./plain-invocation.js";
import { isTransient } from "./retry.js";
import type { DeclaredOutputs } from "./declared-outputs.js";
import { createGatewayTransport } from "./gateway-clients.js";
import { prepareNode, serveSidecar, sidecarAgentEnv, type PreparedNode } from "./sidecar.js";

export interface WarmWorkerOptions {
  /** Attempt lines from the executor; closing it stops the worker. */
  readonly input: Readable;
  /** The worker's protocol lines to the executor. */
  readonly output: Writable;
  /** Where the agent's own stdout and stderr lines go (they must not mix with the protocol). */
  readonly log: (line: string) => void;
  readonly cwd: string;
  /** How long a drained agent may take to exit before it is killed. */
  readonly stopGraceMs?: number;
}

/**
 * A warm worker (docs/warm-agents.md): starts the agent once, in loop mode, and serves it one node
 * attempt after another through one SidecarService, each attempt with its own inputs, run token,
 * event reporter and shared dir, speaking agent-contract/warm-protocol.ts to the executor. Resolves
 * with the worker's exit code once stdin closed and the agent exited: 0, or 1 when the agent died first.
 */
export async function runWarmWorker(env: Env, command: readonly string[], options: WarmWorkerOptions): Promise<number> {
  const [program, ...args] = command;
  if (!program) throw new Error("no agent command given");
  const ownDir = !env.MENTATLAB_SHARED_DIR;
  const workerDir = env.MENTATLAB_SHARED_DIR || (await mkdtemp(join(tmpdir(), "mentatlab-warm-")));
  const token = randomBytes(24).toString("base64url");
  const listen = join(workerDir, "sidecar.sock");
  const say = (line: string) => options.output.write(`${line}\n`);
  const slot = new AttemptSlot(() => say(warmReadyLine));
  // One connection to the gateway for every attempt, each call with the current attempt's run token.
  let runToken = "";
  const gateway = { transport: createGatewayTransport(gatewayUrlOf(env), () => runToken), declaredOutputs: new Map<string, DeclaredOutputs>() };
  const server = await serveSidecar(listen, token, { sidecar: slot.sidecarService(), stream: slot.streamService() });

  const { MENTATLAB_RUN_TOKEN: _runToken, ...inherited } = env;
  const agent = spawn(program, args, {
    cwd: options.cwd,
    env: { ...inherited, ...sidecarAgentEnv(listen, token, workerDir), [warmWorkerEnvName]: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  for (const stream of [agent.stdout, agent.stderr]) createInterface({ input: stream, crlfDelay: Infinity }).on("line", options.log);
  const agentExit = new Promise<string>((resolve) => {
    agent.once("error", (error) => resolve(`could not start: ${error.message}`));
    agent.once("exit", (code, signal) => resolve(signal ? `killed by ${signal}` : `exited with code ${code}`));
  });
  let agentGone: string | undefined;
  const attempts = createInterface({ input: options.input, crlfDelay: Infinity });
  void agentExit.then((how) => {
    agentGone = how;
    // Nothing more can be served: stop reading attempts once the current one is ended.
    attempts.close();
  });

  let served = 0;
  let died: string | undefined;
  try {
    for await (const line of attempts) {
      if (line.trim() === "") continue;
      served += 1;
      const exitCode = await serveAttempt(line, join(workerDir, `attempt-${served}`));
      say(attemptEndLine(exitCode));
    }
    died = agentGone;
  } finally {
    slot.drain();
    const stopped = await Promise.race([agentExit, sleep(options.stopGraceMs ?? 5_000).then(() => undefined)]);
    if (stopped === undefined) agent.kill("SIGKILL");
    await server.close();
    if (ownDir) await rm(workerDir, { recursive: true, force: true });
  }
  if (died) options.log(`agent-sidecar: the warm worker's agent ${died}`);
  return died ? 1 : 0;

  /** Serves one attempt line; resolves with the plain contract's exit code for it. */
  async function serveAttempt(line: string, sharedDir: string): Promise<number> {
    try {
      const attempt = parseAttemptLine(line);
      const config = withPlainInvocation(
        loadSidecarConfig({
          ...env,
          MENTATLAB_RUN_ID: attempt.runId,
          MENTATLAB_NODE_ID: attempt.nodeId,
          MENTATLAB_ATTEMPT: String(attempt.attempt),
          MENTATLAB_RUN_TOKEN: attempt.runToken,
          MENTATLAB_SHARED_DIR: sharedDir,
          MENTATLAB_SIDECAR_LISTEN: listen,
          MENTATLAB_SIDECAR_TOKEN: token,
        }),
        parsePlainInvocation(line),
      );
      runToken = attempt.runToken;
      const node = await prepareNode(config, gateway);
      const ended = await Promise.race([slot.handOver({ runId: attempt.runId, nodeId: attempt.nodeId, attempt: attempt.attempt }, node), agentExit]);
      // A crashed agent is the worker's fault, not the attempt's: worth a retry on another worker.
      const failure = typeof ended === "string" ? `the warm worker's agent ${ended} mid-attempt` : ended.errorMessage || undefined;
      const exitCode = typeof ended === "string" ? transientExitCode : failure ? (ended.transient ? transientExitCode : 1) : 0;
      try {
        await node.finish(failure);
      } finally {
        slot.clear();
      }
      say(JSON.stringify(failure ? { type: "error", message: failure } : plainResult(Object.fromEntries(node.outputs.outputs))));
      return exitCode;
    } catch (error) {
      say(JSON.stringify({ type: "error", message: `sidecar failed: ${error instanceof Error ? error.message : String(error)}` }));
      return isTransient(error) ? transientExitCode : 1;
    } finally {
      await rm(sharedDir, { recursive: true, force: true });
    }
  }
}

/**
 * The attempt a warm worker's agent is serving, if any: the SidecarService calls go to it, NextAttempt
 * waits for the next one (or the order to drain), FinishAttempt ends it.
 */
class AttemptSlot {
  private current: { readonly node: PreparedNode; readonly finished: Deferred<FinishAttemptRequest> } | undefined;
  private next: Deferred<Omit<NextAttemptResponse, "$typeName" | "$unknown">> = deferred();
  private announced = false;

  /** `onFirstWait` is called when the agent first asks for an attempt: it is ready. */
  constructor(private readonly onFirstWait: () => void) {}

  /** Hands the waiting agent `attempt`; resolves with how the agent ended it. */
  handOver(attempt: { runId: string; nodeId: string; attempt: number }, node: PreparedNode): Promise<FinishAttemptRequest> {
    this.current = { node, finished: deferred() };
    this.next.resolve({ ...attempt, drain: false });
    return this.current.finished.promise;
  }

  clear(): void {
    this.current = undefined;
  }

  /** Answers the agent's (next) NextAttempt with `drain`. */
  drain(): void {
    this.next.resolve({ runId: "", nodeId: "", attempt: 0, drain: true });
  }

  sidecarService(): ServiceImpl<typeof SidecarService> {
    const node = () => this.node().sidecarService;
    return {
      getInputs: (req, ctx) => node().getInputs(req, ctx),
      putOutput: (req, ctx) => node().putOutput(req, ctx),
      writeOutput: (req, ctx) => node().writeOutput(req, ctx),
      openOutputStream: (req, ctx) => node().openOutputStream(req, ctx),
      writeOutputStream: (req, ctx) => node().writeOutputStream(req, ctx),
      watchOutputStream: (req, ctx) => node().watchOutputStream(req, ctx),
      closeOutputStream: (req, ctx) => node().closeOutputStream(req, ctx),
      report: (req, ctx) => node().report(req, ctx),
      nextAttempt: async () => {
        if (this.current) throw new ConnectError("call FinishAttempt for the current attempt first", Code.FailedPrecondition);
        if (!this.announced) {
          this.announced = true;
          this.onFirstWait();
        }
        const answer = await this.next.promise;
        // Once drained, every later call hears it too.
        if (!answer.drain) this.next = deferred();
        return answer;
      },
      finishAttempt: (req) => {
        if (!this.current) throw new ConnectError("no attempt is being served: call NextAttempt first", Code.FailedPrecondition);
        this.current.finished.resolve(req);
        return {};
      },
    };
  }

  streamService(): Partial<ServiceImpl<typeof StreamService>> {
    const streams = () => this.node().streamService;
    return {
      subscribe: (req, ctx) => streams().subscribe!(req, ctx),
      getStream: (req, ctx) => streams().getStream!(req, ctx),
    };
  }

  private node(): PreparedNode {
    if (!this.current) throw new ConnectError("no attempt is being served: call NextAttempt first", Code.FailedPrecondition);
    return this.current.node;
  }
}
