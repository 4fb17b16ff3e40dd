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

type Env = Readonly<Record<string, string | undefined>>;

/** Reads the server's environment variables, applying the documented defaults. */
export function readServerConfig(env: Env): ServerConfig {
  const origins = (env.MENTATLAB_CORS_ORIGINS ?? "")
    .split(",")
    .map((origin) => origin.trim())
    .filter((origin) => origin !== "");
  return {
    host: nonEmpty(env.MENTATLAB_HOST) ?? serverDefaults.host,
    port: integer(env, "PORT", serverDefaults.port, 0, 65_535),
    corsAllowedOrigins: origins,
    readMaxBytes: integer(env, "MENTATLAB_READ_MAX_BYTES", serverDefaults.readMaxBytes, 1, 0xffffffff),
    writeMaxBytes: integer(env, "MENTATLAB_WRITE_MAX_BYTES", serverDefaults.writeMaxBytes, 1, 0xffffffff),
    maxRequestBodyBytes: integer(env, "MENTATLAB_MAX_REQUEST_BODY_BYTES", serverDefaults.maxRequestBodyBytes, 0, Number.MAX_SAFE_INTEGER),
    shutdownGraceMs: integer(env, "MENTATLAB_SHUTDOWN_GRACE_MS", serverDefaults.shutdownGraceMs, 0, 3_600_000),
    staticDir: nonEmpty(env.MENTATLAB_WEB_DIR),
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed === "" ? undefined : trimmed;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = nonEmpty(env[name]);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be an integer between ${min} and ${max}, got "${raw}"`);
  }
  return value;
}
