import type { JsonObject } from "@bufbuild/protobuf";
import type { AgentEvent, PinValue, StreamRef } from "../../gen/mentatlab/v1/common_pb.js";
import type { AgentManifest } from "../../gen/mentatlab/v1/registry_pb.js";
import type { ResolvedResources } from "../registry/index.js";

/** One attempt of one node, with its inputs already resolved by the edge processors. */
export interface NodeTask {
  readonly runId: string;
  readonly nodeId: string;
  /** From 1; a retry or a resumed run gets a new attempt. */
  readonly attempt: number;
  readonly workspace: string;
  /** User who submitted the run. */
  readonly user: string;
  readonly agent: AgentManifest;
  /** The node's params from the flow. */
  readonly params: JsonObject;
  /** Input values by pin name (text/json inline, media and large binary as MediaRefs, streams as StreamRefs). */
  readonly inputs: Readonly<Record<string, PinValue>>;
  /** Streams created for the node's `stream` output pins, by pin name: the agent publishes to them. */
  readonly outputStreams: Readonly<Record<string, StreamRef>>;
  /** Limits to apply where the executor can. */
  readonly resources: ResolvedResources;
  /** The attempt is aborted after this long. */
  readonly timeoutMs: number;
  /** Credential for the node's sidecar (MENTATLAB_RUN_TOKEN): acts for this node only, in the run's workspace. */
  readonly runToken: string;
}

/** How an attempt ended. */
export type ExecutionOutcome =
  | { readonly kind: "succeeded"; readonly outputs: Readonly<Record<string, PinValue>> }
  /** `transient` failures (exit code 3 in the plain contract) are retried under the node's retry policy. */
  | { readonly kind: "failed"; readonly reason: string; readonly transient: boolean };

/** What an executor reports while an attempt runs, ending with exactly one outcome. */
export type ExecutorEvent = { readonly kind: "agent"; readonly event: AgentEvent } | ExecutionOutcome;

/**
 * Runs node attempts somewhere: local child processes, Kubernetes Jobs, or in process (bench). When
 * `signal` aborts (cancel, timeout, lost lease) the executor stops the agent and ends the iteration,
 * with or without an outcome; the scheduler decides what the abort meant.
 */
export interface Executor {
  execute(task: NodeTask, signal: AbortSignal): AsyncIterable<ExecutorEvent>;
  close?(): Promise<void>;
}
