import { randomBytes } from "node:crypto";
import { readSidecarEnv, type SidecarEnvTask } from "../agent-contract/sidecar-env.js";
import { integerVar, type Env } from "../services/shared/env.js";

export type { Env };

/** Everything the sidecar needs to know about the node it serves, read from the environment. */
export interface SidecarConfig extends SidecarEnvTask {
  /** Token the agent must present to the SidecarService. */
  readonly sidecarToken: string;
  /** Attempts per download before giving up (each resumes at the last verified offset). */
  readonly downloadAttempts: number;
  /** Attempts per upload before giving up. */
  readonly uploadAttempts: number;
  /** Stream relay: bytes kept in memory before spilling to disk. */
  readonly streamMemoryBytes: number;
  /** Stream relay: bytes buffered (memory + disk) before the agent's writes wait. */
  readonly streamBufferBytes: number;
  /** Longest delay between reconnect attempts to the gateway, in milliseconds. */
  readonly reconnectMaxDelayMs: number;
  /** How long to keep trying to reach the gateway before failing, in milliseconds. */
  readonly reconnectGiveUpMs: number;
  /** Bytes up to which a binary output is carried inline instead of stored. */
  readonly inlineMaxBytes: number;
  /** Stderr lines of a crashed agent kept for the failure report. */
  readonly stderrTailLines: number;
  /** Bridge directory of a plain agent in another container (see plain-bridge.ts); empty when not bridging. */
  readonly plainBridge: string;
}

/** Reads the sidecar's configuration; throws an error naming the variable to fix. */
export function loadSidecarConfig(env: Env): SidecarConfig {
  return {
    ...readSidecarEnv(env),
    sidecarToken: env.MENTATLAB_SIDECAR_TOKEN || randomBytes(24).toString("base64url"),
    downloadAttempts: integerVar(env, "MENTATLAB_DOWNLOAD_ATTEMPTS", 5, { min: 1 }),
    uploadAttempts: integerVar(env, "MENTATLAB_UPLOAD_ATTEMPTS", 3, { min: 1 }),
    streamMemoryBytes: integerVar(env, "MENTATLAB_STREAM_MEMORY_BYTES", 4 * 1024 * 1024),
    streamBufferBytes: integerVar(env, "MENTATLAB_STREAM_BUFFER_BYTES", 1024 * 1024 * 1024, { min: 1 }),
    reconnectMaxDelayMs: integerVar(env, "MENTATLAB_RECONNECT_MAX_DELAY_MS", 2000, { min: 1 }),
    reconnectGiveUpMs: integerVar(env, "MENTATLAB_RECONNECT_GIVE_UP_MS", 5 * 60 * 1000, { min: 1 }),
    inlineMaxBytes: integerVar(env, "MENTATLAB_INLINE_MAX_BYTES", 64 * 1024),
    stderrTailLines: integerVar(env, "MENTATLAB_STDERR_TAIL_LINES", 20, { min: 1 }),
    plainBridge: env.MENTATLAB_PLAIN_BRIDGE ?? "",
  };
}
