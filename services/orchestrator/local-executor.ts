import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants, createReadStream, statSync } from "node:fs";
import { getPriority, setPriority } from "node:os";
import { basename, delimiter, isAbsolute, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { create } from "@bufbuild/protobuf";
import { BucketClass, LogLevel, type PinValue, PinValueSchema } from "../../gen/mentatlab/v1/common_pb.js";
import type { CpuCaps } from "./cpu-caps.js";
import type { Executor, ExecutorEvent, NodeTask } from "./executor.js";
import type { AgentManifest } from "../../gen/mentatlab/v1/registry_pb.js";
import { calculateResources, type ResolvedResources } from "../registry/index.js";
import { warmWorkerEnvName } from "../../agent-contract/warm-protocol.js";
import { type AttemptChannel, type AttemptEnd, WarmWorker } from "./warm-pool.js";
import { WarmPools } from "./warm-pools.js";
import type { MediaStore } from "./media-store.js";
import { logEvent, outputFromPlain, parsePlainLine, plainInput, transientExitCode } from "../../agent-contract/plain-contract.js";

export interface LocalExecutorOptions {
  /** Uploads outputs an agent wrote to local files (`{"path": ...}`); without it such outputs fail. */
  readonly media?: MediaStore;
  /** Environment passed through to every agent (PATH, HOME, ...), below the manifest's env. */
  readonly baseEnv?: Readonly<Record<string, string | undefined>>;
  /**
   * Where an agent's sidecar reaches the mesh, handed over as MENTATLAB_GATEWAY_URL. It wins over a
   * manifest's env, which cannot know the port this mesh runs on.
   */
  readonly gatewayUrl?: string;
  /** Between SIGTERM and SIGKILL of the agent's process group on abort. */
  readonly killGraceMs: number;
  /** Apply memory caps (prlimit / --max-old-space-size). */
  readonly memoryLimits: boolean;
  /** Niceness added to this process's own for every agent (capped at 19), so agents yield the CPU to the mesh; 0 keeps the mesh's priority. */
  readonly agentNiceIncrement: number;
  /** Caps each attempt at its resources' CPU share; without it agents may use every core. */
  readonly cpuCaps?: CpuCaps;
  /** The host's PATH, searched once for util-linux's setpriv and prlimit; without them agents run without a memory cap or death signal. */
  readonly hostPath: string | undefined;
  /**
   * Warm workers for long_running agents where the manifest's warm_pool does not say
   * (docs/warm-agents.md); without it, or with size 0, such agents run cold unless their manifest asks.
   */
  readonly warmPool?: { readonly size: number; readonly maxAttemptsPerWorker: number };
}

/** The environment copies of spec and context are skipped above this (Linux caps one env string at 128 KiB); stdin always carries it. */
const maxEnvValueBytes = 100 * 1024;
const stderrTailBytes = 4096;
/** The lowest CPU priority (highest niceness) on POSIX systems. */
const maxNice = 19;

interface HostTools {
  readonly setpriv: string | undefined;
  readonly prlimit: string | undefined;
}

const toolsByPath = new Map<string, HostTools>();

/** util-linux helpers, where the OS has them (Linux); elsewhere agents run without a memory cap or death signal. */
function hostTools(path: string): HostTools {
  let tools = toolsByPath.get(path);
  if (!tools) toolsByPath.set(path, (tools = { setpriv: findOnPath(path, "setpriv"), prlimit: findOnPath(path, "prlimit") }));
  return tools;
}

function findOnPath(path: string, name: string): string | undefined {
  for (const dir of path.split(delimiter)) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/**
 * Runs each attempt as a child process speaking the original plain contract. The agent runs in its
 * own process group (so cancel/timeout kills everything it started) under `setpriv --pdeathsig KILL`
 * (so it dies with a crashed orchestrator instead of running on unobserved).
 *
 * Memory cap: Node agents (runtime `node` or a `node` command) get `--max-old-space-size` through
 * NODE_OPTIONS, because V8 reserves far more address space than it uses and dies under RLIMIT_AS;
 * every other agent runs under `prlimit --as`, which caps virtual memory (stricter than RSS).
 * Without util-linux (not Linux) agents run uncapped and without the death signal.
 *
 * CPU priority: each agent runs `agentNiceIncrement` nicer than the mesh, so a busy flow cannot take
 * the cores from live stream delivery. Raising niceness needs no privilege. Where the OS lets this
 * process write control groups, `cpuCaps` also holds each attempt to its resources' CPU share.
 *
 * Warm pools (docs/warm-agents.md): a long_running agent's attempts are served by workers started ahead
 * of them (warm-pools.ts), under the same caps at the agent's profile resources, speaking the plain
 * contract in a loop (agent-contract/warm-protocol.ts); their lines are judged exactly as a process's.
 */
export class LocalExecutor implements Executor {
  private readonly tools: HostTools;
  private readonly warmPools: WarmPools;

  constructor(private readonly options: LocalExecutorOptions) {
    this.tools = hostTools(options.hostPath ?? "");
    this.warmPools = new WarmPools(options.warmPool ?? { size: 0, maxAttemptsPerWorker: 1 }, options.killGraceMs, (agent) => {
      const resources = calculateResources(agent, 0);
      const child = this.spawnAgent(agent, resources, { [warmWorkerEnvName]: "1" });
      this.confine(`warm.${agent.id}.${child.pid ?? 0}`, resources, child);
      return new WarmWorker(child, (worker) => this.killGroup(worker));
    });
  }

  async *execute(task: NodeTask, signal: AbortSignal): AsyncIterable<ExecutorEvent> {
    if (task.agent.command.length === 0) {
      yield { kind: "failed", reason: `agent ${task.agent.id}@${task.agent.version} has no command for local runs`, transient: false };
      return;
    }
    const pool = this.warmPools.poolFor(task.agent);
    if (!pool) {
      yield* this.interpret(task, this.coldAttempt(task, signal), signal);
      return;
    }
    let worker: WarmWorker;
    try {
      worker = await pool.acquire(signal);
    } catch (err) {
      if (signal.aborted) return;
      yield { kind: "failed", reason: err instanceof Error ? err.message : String(err), transient: false };
      return;
    }
    let succeeded = false;
    try {
      for await (const event of this.interpret(task, worker.serve(plainInput(task), task.runToken, signal), signal)) {
        if (event.kind === "succeeded") succeeded = true;
        yield event;
      }
    } finally {
      pool.release(worker, succeeded);
    }
  }

  /** Stops every warm worker (idle ones now, busy ones once their attempt ends). */
  async close(): Promise<void> {
    await this.warmPools.close();
  }

  /** Starts the attempt's own agent process, speaking the plain contract; aborting `signal` kills its group. */
  private coldAttempt(task: NodeTask, signal: AbortSignal): AttemptChannel {
    const input = plainInput(task);
    const inputJson = JSON.stringify(input);
    const child = this.spawnAgent(task.agent, task.resources, this.attemptEnv(task, JSON.stringify(input.spec), JSON.stringify(input.context)));
    this.confine(`${task.runId}.${task.nodeId}.${task.attempt}`, task.resources, child);
    const ended = new Promise<AttemptEnd>((done) => {
      child.once("error", (error) => done({ code: null, signal: null, error }));
      child.once("close", (code, sig) => done({ code, signal: sig }));
    });
    const stop = () => this.killGroup(child);
    signal.addEventListener("abort", stop, { once: true });
    void ended.then(() => signal.removeEventListener("abort", stop));
    let stderrTail = "";
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      stderrTail = (stderrTail + chunk).slice(-stderrTailBytes);
    });
    child.stdin?.on("error", () => {
      // An agent that ignores stdin may exit before reading it; its exit status tells what happened.
    });
    child.stdin?.end(inputJson);
    const lines = child.stdout ? createInterface({ input: child.stdout, crlfDelay: Infinity }) : [];
    return {
      lines: (async function* () {
        try {
          yield* lines;
        } finally {
          // The attempt is over (or abandoned): nothing of it may run on unobserved.
          if (child.exitCode === null && child.signalCode === null) stop();
        }
      })(),
      ended,
      stderrTail: () => stderrTail,
    };
  }

  /** Turns an attempt's plain-contract stdout and end into events and exactly one outcome (none once aborted). */
  private async *interpret(task: NodeTask, attempt: AttemptChannel, signal: AbortSignal): AsyncIterable<ExecutorEvent> {
    const rawOutputs = new Map<string, unknown>();
    let result: unknown;
    let errorMessage = "";
    for await (const line of attempt.lines) {
      const parsed = parsePlainLine(line);
      if (!parsed) continue;
      if (parsed.kind === "result") {
        result = parsed.result;
        continue;
      }
      if (parsed.kind === "output") rawOutputs.set(parsed.pin, parsed.raw);
      if (parsed.kind === "error") errorMessage = parsed.message;
      yield { kind: "agent", event: parsed.event };
    }
    const status = await attempt.ended;
    if (signal.aborted) return;
    if (status.error) {
      yield { kind: "failed", reason: `could not start ${task.agent.command[0]}: ${status.error.message}`, transient: false };
      return;
    }
    const stderrTail = attempt.stderrTail();
    if (stderrTail.trim()) yield { kind: "agent", event: logEvent(status.code === 0 ? LogLevel.WARN : LogLevel.ERROR, `stderr: ${stderrTail.trim()}`) };
    if (status.crash) {
      yield { kind: "failed", reason: status.crash, transient: true };
      return;
    }
    if (status.code !== 0) {
      const why = status.signal ? `was killed by ${status.signal}` : `exited with code ${status.code}`;
      const detail = errorMessage || lastLine(stderrTail);
      yield { kind: "failed", reason: `agent ${why}${detail ? `: ${detail}` : ""}`, transient: status.code === transientExitCode };
      return;
    }
    if (result === undefined) {
      yield { kind: "failed", reason: 'agent exited without a {"result": ...} line', transient: false };
      return;
    }
    if (result !== null && (typeof result !== "object" || Array.isArray(result))) {
      yield { kind: "failed", reason: "the result must be an object keyed by output pin name", transient: false };
      return;
    }
    for (const [pin, raw] of Object.entries(result ?? {})) {
      // Original agents often return extra keys; they are reported, not fatal.
      if (task.agent.outputs.some((p) => p.name === pin)) rawOutputs.set(pin, raw);
      else yield { kind: "agent", event: logEvent(LogLevel.WARN, `result key "${pin}" is not an output pin of ${task.agent.id}; ignored`) };
    }
    yield await this.collectOutputs(task, rawOutputs);
  }

  /** The environment of one attempt's own process. */
  private attemptEnv(task: NodeTask, spec: string, context: string): Record<string, string> {
    const env: Record<string, string> = {
      MENTATLAB_RUN_TOKEN: task.runToken,
      MENTATLAB_RUN_ID: task.runId,
      MENTATLAB_NODE_ID: task.nodeId,
      MENTATLAB_ATTEMPT: String(task.attempt),
    };
    if (Buffer.byteLength(spec) <= maxEnvValueBytes) env["INPUT_SPEC"] = spec;
    if (Buffer.byteLength(context) <= maxEnvValueBytes) env["INPUT_CONTEXT"] = context;
    return env;
  }

  /** Starts an agent's command with the base env, the manifest's, then `extraEnv`, under the executor's caps. */
  private spawnAgent(agent: AgentManifest, resources: ResolvedResources, extraEnv: Readonly<Record<string, string>>): ChildProcess {
    const [command, ...args] = agent.command as [string, ...string[]];
    const cwd = agent.workingDir || process.cwd();
    const program = command.includes("/") && !isAbsolute(command) ? resolve(cwd, command) : command;
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.options.baseEnv ?? {})) if (v !== undefined) env[k] = v;
    Object.assign(env, agent.env, extraEnv);
    if (this.options.gatewayUrl) env["MENTATLAB_GATEWAY_URL"] = this.options.gatewayUrl;
    const argv = [program, ...args];
    const isNode = agent.runtime === "node" || basename(program) === "node";
    if (this.options.memoryLimits) {
      const mib = Math.max(16, Math.floor(resources.memoryBytes / 2 ** 20));
      if (isNode) env["NODE_OPTIONS"] = `${env["NODE_OPTIONS"] ?? ""} --max-old-space-size=${mib}`.trim();
      else if (this.tools.prlimit) argv.unshift(this.tools.prlimit, `--as=${resources.memoryBytes}`, "--");
    }
    if (this.tools.setpriv) argv.unshift(this.tools.setpriv, "--pdeathsig", "KILL", "--");
    const [file, ...rest] = argv as [string, ...string[]];
    const child = spawn(file, rest, { cwd, env, detached: true, stdio: ["pipe", "pipe", "pipe"] });
    this.lowerPriority(child);
    return child;
  }

  private confine(name: string, resources: ResolvedResources, child: ChildProcess): void {
    if (child.pid === undefined || !this.options.cpuCaps) return;
    const cap = this.options.cpuCaps.confine(name, child.pid, {
      cpuCores: resources.cpuCores,
      nice: this.agentNice(),
    });
    child.once("close", () => cap.release());
  }

  // setpriv and prlimit exec into the agent under this same pid, which keeps the niceness, and
  // whatever the agent starts inherits it.
  private lowerPriority(child: ChildProcess): void {
    if (child.pid === undefined || this.options.agentNiceIncrement === 0) return;
    try {
      setPriority(child.pid, this.agentNice());
    } catch (err) {
      // An agent that already exited has no priority to set; its exit status tells what happened.
      if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
    }
  }

  /** The niceness agents run at: the mesh's own plus the increment, capped at the lowest priority. */
  private agentNice(): number {
    return Math.min(maxNice, getPriority() + this.options.agentNiceIncrement);
  }

  private killGroup(child: ChildProcess): void {
    if (child.pid === undefined) return;
    const pid = child.pid;
    const send = (sig: NodeJS.Signals) => {
      try {
        process.kill(-pid, sig);
      } catch {
        // The group is already gone.
      }
    };
    send("SIGTERM");
    const timer = setTimeout(() => send("SIGKILL"), this.options.killGraceMs);
    timer.unref();
    child.once("close", () => clearTimeout(timer));
  }

  private async collectOutputs(task: NodeTask, raw: ReadonlyMap<string, unknown>): Promise<ExecutorEvent> {
    const outputs: Record<string, PinValue> = {};
    const problems: string[] = [];
    for (const [name, value] of raw) {
      const pin = task.agent.outputs.find((p) => p.name === name);
      if (!pin) {
        problems.push(
          `output event for "${name}", which is not an output pin of ${task.agent.id} (outputs: ${task.agent.outputs.map((p) => p.name).join(", ") || "none"})`,
        );
        continue;
      }
      const out = outputFromPlain(pin, value as Parameters<typeof outputFromPlain>[1]);
      if ("error" in out) problems.push(out.error);
      else if ("value" in out) outputs[name] = out.value;
      else {
        try {
          outputs[name] = create(PinValueSchema, { value: { case: "media", value: await this.uploadFile(task, out.file.path, out.file.mimeType) } });
        } catch (err) {
          problems.push(`output "${name}": ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    }
    if (problems.length > 0) return { kind: "failed", reason: `bad result: ${problems.join("; ")}`, transient: false };
    return { kind: "succeeded", outputs };
  }

  private async uploadFile(task: NodeTask, path: string, mimeType: string) {
    if (!this.options.media) throw new Error("file outputs need storage, and this executor has none");
    const file = isAbsolute(path) ? path : resolve(task.agent.workingDir || process.cwd(), path);
    const sizeBytes = BigInt(statSync(file).size);
    return this.options.media.upload(
      createReadStream(file, { highWaterMark: 64 * 1024 }),
      { filename: basename(file), mimeType, sizeBytes, bucketClass: BucketClass.MEDIA },
      task.runToken,
    );
  }
}

function lastLine(text: string): string {
  return text.trim().split("\n").at(-1)?.slice(0, 500) ?? "";
}
