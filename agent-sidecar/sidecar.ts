import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { toJson, type JsonObject } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl, type Transport } from "@connectrpc/connect";
import { LogLevel, PinType, StreamRefSchema, type PinValue } from "../gen/mentatlab/v1/common_pb.js";
import { SidecarService, type LocalInput } from "../gen/mentatlab/v1/sidecar_pb.js";
import { StreamService } from "../gen/mentatlab/v1/stream_pb.js";
import type { SidecarConfig } from "./config.js";
import { NodeEventReporter } from "./event-reporter.js";
import { createGatewayClients, createGatewayTransport } from "./gateway-clients.js";
import { prepareLocalInputs } from "./local-inputs.js";
import { OutputPublisher } from "./output-publisher.js";
import { OutputStreams } from "./output-streams.js";
import { runPlainAgent, type PlainAgentExit } from "./plain-agent.js";
import { runBridgedAgent } from "./plain-bridge.js";
import type { PlainStdoutHandlers } from "./plain-stdout.js";
import { publishPlainOutput, publishPlainResult } from "./result-outputs.js";
import { logEvent, plainValue, transientExitCode } from "../agent-contract/plain-contract.js";
import { isTransient, type Backoff } from "./retry.js";
import { sidecarAuthInterceptor } from "./sidecar-auth.js";
import { listenHttp2, type ListeningServer } from "./sidecar-server.js";
import { createSidecarService, type AttemptSidecarService } from "./sidecar-service.js";
import { declaredOutputs, type DeclaredOutputs } from "./declared-outputs.js";
import { followStream } from "./stream-follow.js";

/** One node attempt made ready for an agent: inputs are local, outputs and events go to the mesh. */
export interface PreparedNode {
  /** Directory the agent works in and writes outputs to. */
  readonly workDir: string;
  readonly inputs: ReadonlyMap<string, LocalInput>;
  /** Output pin types, from the configuration or the agent's registered manifest; empty if neither. */
  readonly outputPins: ReadonlyMap<string, PinType>;
  readonly outputs: OutputPublisher;
  readonly streams: OutputStreams;
  readonly reporter: NodeEventReporter;
  /** The SidecarService for this attempt (less the warm worker's NextAttempt and FinishAttempt). */
  readonly sidecarService: AttemptSidecarService;
  /** The StreamService calls the agent makes to follow its stream inputs. */
  readonly streamService: Partial<ServiceImpl<typeof StreamService>>;
  /**
   * Ends every stream still open (with an error when `failure` is set), reports the failure if any and
   * delivers pending events.
   */
  finish(failure?: string): Promise<void>;
}

/** A sidecar serving one node: inputs are local, the SidecarService is listening. */
export interface RunningSidecar extends PreparedNode {
  /** Where the agent dials the SidecarService (unix socket path or `127.0.0.1:<port>`). */
  readonly address: string;
  /** Token the agent presents as `Authorization: Bearer`. */
  readonly token: string;
  /** Environment to add to the agent's: where and how to reach the sidecar. Never the run token. */
  readonly agentEnv: Readonly<Record<string, string>>;
  /** `finish`, then stops serving. */
  close(failure?: string): Promise<void>;
}

export interface SidecarOptions {
  /** Transport to the gateway; defaults to gRPC over HTTP/2 to `config.gatewayUrl` with the run token. */
  readonly transport?: Transport;
  /**
   * What each agent version declares about its outputs, by `id@version`, kept across attempts by a warm
   * worker (whose pool is replaced when the agent is registered again) so an attempt skips the registry.
   */
  readonly declaredOutputs?: Map<string, DeclaredOutputs>;
}

const backoffFor = (config: SidecarConfig): Backoff => ({ initialMs: 100, maxMs: config.reconnectMaxDelayMs });

/** Downloads the node's inputs and sets up its outputs, streams and event reports; serves nothing yet. */
export async function prepareNode(config: SidecarConfig, options: SidecarOptions = {}): Promise<PreparedNode> {
  const clients = createGatewayClients(options.transport ?? createGatewayTransport(config.gatewayUrl, config.runToken));
  const backoff = backoffFor(config);
  const node = { runId: config.runId, nodeId: config.nodeId, attempt: config.attempt };
  const workDir = join(config.sharedDir, "work");
  const spillDir = join(config.sharedDir, ".spill");
  await Promise.all([mkdir(workDir, { recursive: true }), mkdir(spillDir, { recursive: true })]);

  const reporter = new NodeEventReporter(clients.orchestrator, node, { attempts: config.uploadAttempts + 5, backoff });
  const agentKey = `${config.agentId}@${config.agentVersion}`;
  const declared = options.declaredOutputs?.get(agentKey) ?? (await declaredOutputs(config, clients.registry, { attempts: config.downloadAttempts, backoff }));
  options.declaredOutputs?.set(agentKey, declared);
  const outputPins = declared.types;
  const inputs = await prepareLocalInputs(clients.storage, config.inputs, config.sharedDir, {
    attempts: config.downloadAttempts,
    backoff,
  });
  const outputs = new OutputPublisher(clients.storage, reporter, {
    sharedDir: config.sharedDir,
    outputPins,
    outputConstraints: declared.constraints,
    inlineMaxBytes: config.inlineMaxBytes,
    uploadAttempts: config.uploadAttempts,
    backoff,
  });
  const streams = new OutputStreams(clients.stream, outputs, reporter, node, {
    spillDir,
    memoryBytes: config.streamMemoryBytes,
    capacityBytes: config.streamBufferBytes,
    backoff,
    giveUpMs: config.reconnectGiveUpMs,
    precreated: config.outputStreams,
    chunkBytesFor,
  });
  const follow = { backoff, giveUpMs: config.reconnectGiveUpMs };
  return {
    workDir,
    inputs,
    outputPins,
    outputs,
    streams,
    reporter,
    sidecarService: createSidecarService({ node, inputs, params: config.params as JsonObject, workDir, outputs, streams, reporter }),
    // Stream inputs: the agent follows them through the sidecar, which resumes through network blips.
    streamService: {
      subscribe: (req, ctx) => followStream(clients.stream, req.streamId, req.afterSeq, { ...follow, signal: ctx.signal }),
      getStream: (req, ctx) => clients.stream.getStream(req, { signal: ctx.signal }),
    },
    async finish(failure) {
      await streams.closeAll(failure ?? "");
      if (failure) reporter.enqueue(logEvent(LogLevel.ERROR, failure));
      await reporter.flush();
    },
  };
}

/** Serves the SidecarService (and the StreamService calls an agent may make) with the per-pod token. */
export function serveSidecar(
  listen: string,
  token: string,
  services: { readonly sidecar: ServiceImpl<typeof SidecarService>; readonly stream: Partial<ServiceImpl<typeof StreamService>> },
): Promise<ListeningServer> {
  return listenHttp2(
    listen,
    (router) => {
      router.service(SidecarService, services.sidecar);
      router.service(StreamService, services.stream);
    },
    [sidecarAuthInterceptor(token)],
  );
}

/** NextAttempt and FinishAttempt of a sidecar that serves one attempt only. */
const singleAttempt: Pick<ServiceImpl<typeof SidecarService>, "nextAttempt" | "finishAttempt"> = {
  nextAttempt() {
    throw new ConnectError("this sidecar serves one attempt: NextAttempt is for warm workers (MENTATLAB_WARM_WORKER=1)", Code.FailedPrecondition);
  },
  finishAttempt() {
    throw new ConnectError("this sidecar serves one attempt: exit when done; FinishAttempt is for warm workers", Code.FailedPrecondition);
  },
};

/** Downloads the node's inputs and starts serving the SidecarService. */
export async function startSidecar(config: SidecarConfig, options: SidecarOptions = {}): Promise<RunningSidecar> {
  const node = await prepareNode(config, options);
  const server = await serveSidecar(config.listen, config.sidecarToken, { sidecar: { ...node.sidecarService, ...singleAttempt }, stream: node.streamService });
  return {
    ...node,
    address: server.address,
    token: config.sidecarToken,
    agentEnv: {
      ...sidecarAgentEnv(server.address, config.sidecarToken, config.sharedDir),
      MENTATLAB_WORK_DIR: node.workDir,
      MENTATLAB_RUN_ID: config.runId,
      MENTATLAB_NODE_ID: config.nodeId,
      MENTATLAB_ATTEMPT: String(config.attempt),
    },
    async close(failure) {
      try {
        await node.finish(failure);
      } finally {
        await server.close();
      }
    },
  };
}

/** What an agent needs to reach its sidecar. Never the run token. */
export function sidecarAgentEnv(address: string, token: string, sharedDir: string): Record<string, string> {
  return { MENTATLAB_SIDECAR_ADDRESS: address, MENTATLAB_SIDECAR_TOKEN: token, MENTATLAB_SHARED_DIR: sharedDir };
}

/** How a wrapped agent ended. */
export interface AgentOutcome {
  /** Exit code for the sidecar process: the agent's own, or 1 (3 when transient) if the sidecar failed. */
  readonly exitCode: number;
  /** Why the node failed; undefined on success. */
  readonly failure?: string;
  /** Every output the agent produced (also reported to the orchestrator as OutputEvents), by pin. */
  readonly outputs: Readonly<Record<string, PinValue>>;
}

/**
 * Runs `command` as a plain-contract agent beside a sidecar: inputs downloaded first, the agent's NDJSON
 * events forwarded, its final result turned into outputs, its exit (with the last stderr lines on a
 * crash) reported. Resolves when the agent has exited and everything is delivered, so a Job pod ends.
 */
export async function runAgentWithSidecar(
  config: SidecarConfig,
  command: readonly string[],
  options: SidecarOptions & {
    /** Environment the agent inherits (minus the sidecar's credentials): main.ts hands over `process.env`. */
    readonly baseEnv: Readonly<Record<string, string | undefined>>;
    /** Stops the agent (cancel, timeout); the node then fails. */
    readonly signal?: AbortSignal;
    /** The agent's working directory; defaults to the node's work dir on the shared volume. */
    readonly cwd?: string;
  },
): Promise<AgentOutcome> {
  return withSidecar(config, options, (sidecar) => {
    // The run token is the sidecar's credential; the agent only ever gets the pod-local one.
    const { MENTATLAB_RUN_TOKEN: _runToken, MENTATLAB_INPUTS_JSON: _inputs, ...inherited } = options.baseEnv;
    const cwd = options.cwd ?? sidecar.workDir;
    return runPlain(config, sidecar, { signal: options.signal, cwd }, (io) =>
      runPlainAgent({
        ...io,
        command,
        cwd,
        env: { ...inherited, ...sidecar.agentEnv, INPUT_SPEC: JSON.stringify(io.stdin.spec), INPUT_CONTEXT: JSON.stringify(io.stdin.context) },
      }),
    );
  });
}

/**
 * Runs a plain-contract agent living in another container of the pod, through the file bridge in
 * `bridgeDir` on the shared volume (agent-sidecar/plain-bridge.ts): the same spec, events, outputs and
 * failure reports as `runAgentWithSidecar`. Relative paths in the agent's result are taken relative to
 * the node's work dir, the only directory both containers see. `onReady` is called once inputs are
 * local and the SidecarService serves, before the spec is handed over.
 */
export async function runBridgedAgentWithSidecar(
  config: SidecarConfig,
  bridgeDir: string,
  options: SidecarOptions & {
    /** Stops following the agent (SIGTERM: the Job is being deleted); the node then fails. */
    readonly signal?: AbortSignal;
    readonly onReady?: (sidecar: RunningSidecar) => Promise<void>;
    readonly pollMs?: number;
  } = {},
): Promise<AgentOutcome> {
  return withSidecar(config, options, async (sidecar) => {
    await options.onReady?.(sidecar);
    return runPlain(config, sidecar, { signal: options.signal, cwd: sidecar.workDir }, (io) =>
      runBridgedAgent({ ...io, dir: bridgeDir, pollMs: options.pollMs, reporter: sidecar.reporter }),
    );
  });
}

/** Starts a sidecar, runs `body` beside it, closes it with the outcome's failure and collects the outputs. */
async function withSidecar(
  config: SidecarConfig,
  options: SidecarOptions,
  body: (sidecar: RunningSidecar) => Promise<Omit<AgentOutcome, "outputs">>,
): Promise<AgentOutcome> {
  let sidecar: RunningSidecar;
  try {
    sidecar = await startSidecar(config, options);
  } catch (error) {
    return {
      exitCode: isTransient(error) ? transientExitCode : 1,
      failure: `sidecar could not prepare the node: ${messageOf(error)}`,
      outputs: {},
    };
  }
  let outcome: Omit<AgentOutcome, "outputs">;
  try {
    outcome = await body(sidecar);
  } catch (error) {
    outcome = { exitCode: isTransient(error) ? transientExitCode : 1, failure: `sidecar failed: ${messageOf(error)}` };
  }
  try {
    await sidecar.close(outcome.failure);
  } catch (error) {
    if (!outcome.failure) outcome = { exitCode: isTransient(error) ? transientExitCode : 1, failure: messageOf(error) };
  }
  return { ...outcome, outputs: Object.fromEntries(sidecar.outputs.outputs) };
}

/** What a plain agent's runner gets: the spec to hand over and where its events and outputs go. */
interface PlainIo extends PlainStdoutHandlers {
  readonly stdin: { spec: JsonObject; context: JsonObject };
  readonly signal: AbortSignal;
  readonly stderrTailLines: number;
}

/** Runs a plain agent by `launch` (wrapped or bridged), forwarding its events and judging its exit. */
async function runPlain(
  config: SidecarConfig,
  sidecar: RunningSidecar,
  options: { readonly signal: AbortSignal | undefined; readonly cwd: string },
  launch: (io: PlainIo) => Promise<PlainAgentExit>,
): Promise<Omit<AgentOutcome, "outputs">> {
  const { reporter } = sidecar;
  const stop = options.signal ? AbortSignal.any([options.signal, reporter.cancelled]) : reporter.cancelled;
  const published: Promise<void>[] = [];
  const exit = await launch({
    stdin: plainSpec(config, sidecar),
    stderrTailLines: config.stderrTailLines,
    signal: stop,
    // Delivery errors surface at the final flush; events keep queueing meanwhile.
    onEvent: (event) => reporter.send(event),
    onOutput: (pin, raw) => {
      const output = publishPlainOutput(pin, raw, sidecar.outputPins, sidecar.outputs, options.cwd);
      published.push(output);
      return output;
    },
  });
  await Promise.all(published);
  if (stop.aborted) return { exitCode: 1, failure: "the agent was stopped: the run was cancelled or timed out" };
  if (exit.exitCode !== 0) {
    const how = exit.exitCode === null ? `was killed by ${exit.exitSignal}` : `exited with code ${exit.exitCode}`;
    const detail = exit.errorMessage ? `: ${exit.errorMessage}` : "";
    const tail = exit.stderrTail.length > 0 ? `; last stderr lines:\n${exit.stderrTail.join("\n")}` : "";
    return { exitCode: exit.exitCode ?? 1, failure: `agent ${how}${detail}${tail}` };
  }
  if (exit.hasResult && exit.result !== undefined) {
    await publishPlainResult(exit.result, sidecar.outputPins, sidecar.outputs, options.cwd, exit.resultProgress);
  }
  return { exitCode: 0 };
}

/**
 * The plain contract's `{"spec", "context"}` (the same shape the local executor feeds, see
 * agent-contract/plain-contract.ts), with a `path` added to every media input: its verified
 * local copy on the shared volume.
 */
export function plainSpec(config: SidecarConfig, sidecar: Pick<RunningSidecar, "inputs" | "workDir">): { spec: JsonObject; context: JsonObject } {
  const inputs: JsonObject = {};
  for (const [pin, value] of config.inputs) {
    const local = sidecar.inputs.get(pin);
    const plain = plainValue(value);
    inputs[pin] =
      local?.value.case === "filePath" && typeof plain === "object" && plain !== null && !Array.isArray(plain) ? { ...plain, path: local.value.value } : plain;
  }
  return {
    spec: { agent_id: config.agentId, agent_version: config.agentVersion, params: config.params },
    context: {
      run_id: config.runId,
      node_id: config.nodeId,
      attempt: config.attempt,
      workspace: config.workspace,
      inputs,
      output_streams: Object.fromEntries([...config.outputStreams].map(([pin, ref]) => [pin, toJson(StreamRefSchema, ref)])),
      shared_dir: config.sharedDir,
      work_dir: sidecar.workDir,
    },
  };
}

/** The design's streaming chunk sizes: audio 8 KiB, video 64 KiB, text 1 KiB. */
export function chunkBytesFor(payloadType: PinType): number {
  if (payloadType === PinType.AUDIO) return 8 * 1024;
  if (payloadType === PinType.TEXT || payloadType === PinType.JSON) return 1024;
  return 64 * 1024;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
