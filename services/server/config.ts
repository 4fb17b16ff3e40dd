import { integerVar, portVar, stringVar, type Env } from "../shared/env.js";

/** Server settings that come from the environment; the lead maps them onto `ServerOptions`. */
export interface ServerConfig {
  /** Interface to bind: loopback unless the operator opts into exposing the port. */
  readonly host: string;
  /** TCP port; 0 picks a free one. */
  readonly port: number;
  /** Browser origins allowed to call the API (exact origins, or `*`); empty disables CORS. */
  readonly corsAllowedOrigins: readonly string[];
  /** Largest RPC message accepted from a client, in bytes. */
  readonly readMaxBytes: number;
  /** Largest RPC message the server will send, in bytes. */
  readonly writeMaxBytes: number;
  /** Largest body accepted by a plain-HTTP route, in bytes. */
  readonly maxRequestBodyBytes: number;
  /** How long in-flight calls may run after shutdown starts. */
  readonly shutdownGraceMs: number;
  /** Folder of web UI files served at `/`, when set. */
  readonly staticDir: string | undefined;
}

export const MIB = 1024 * 1024;

export const serverDefaults = {
  host: "127.0.0.1",
  port: 8080,
  readMaxBytes: 8 * MIB,
  writeMaxBytes: 8 * MIB,
  maxRequestBodyBytes: 64 * MIB,
  shutdownGraceMs: 10_000,
} as const;

/** Reads the server's environment variables, applying the documented defaults. */
export function readServerConfig(env: Env): ServerConfig {
  const origins = (env.MENTATLAB_CORS_ORIGINS ?? "")
    .split(",")
    .map((origin) => origin.trim())
    .filter((origin) => origin !== "");
  return {
    host: stringVar(env, "MENTATLAB_HOST") ?? serverDefaults.host,
    port: portVar(env, "PORT", serverDefaults.port),
    corsAllowedOrigins: origins,
    readMaxBytes: integerVar(env, "MENTATLAB_READ_MAX_BYTES", serverDefaults.readMaxBytes, { min: 1, max: 0xffffffff }),
    writeMaxBytes: integerVar(env, "MENTATLAB_WRITE_MAX_BYTES", serverDefaults.writeMaxBytes, { min: 1, max: 0xffffffff }),
    maxRequestBodyBytes: integerVar(env, "MENTATLAB_MAX_REQUEST_BODY_BYTES", serverDefaults.maxRequestBodyBytes),
    shutdownGraceMs: integerVar(env, "MENTATLAB_SHUTDOWN_GRACE_MS", serverDefaults.shutdownGraceMs, { max: 3_600_000 }),
    staticDir: stringVar(env, "MENTATLAB_WEB_DIR"),
  };
}
