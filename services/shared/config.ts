import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

export type Env = Readonly<Record<string, string | undefined>>;

/** Settings every MentatLab process shares. Each service reads its own in its folder's config.ts. */
export interface MeshConfig {
  /** Interface to listen on (`HOST`, default 127.0.0.1; set 0.0.0.0 in a container). */
  readonly host: string;
  /** Port (`PORT`, default 8080). */
  readonly port: number;
  /** Where embedded backends keep their files (`MENTATLAB_DATA_DIR`, default `./.mentatlab`). */
  readonly dataDir: string;
  /** URL clients reach this process at, used in presigned and SSE links (`MENTATLAB_PUBLIC_URL`). */
  readonly publicUrl: string;
  /** Browser origins allowed by CORS (`MENTATLAB_CORS_ORIGINS`, comma-separated, `*` for any; default none). */
  readonly corsOrigins: readonly string[];
  /** Largest RPC message accepted or sent, bytes (`MENTATLAB_MAX_MESSAGE_BYTES`, default 8 MiB). */
  readonly maxMessageBytes: number;
  /** How long in-flight calls may finish on shutdown, ms (`MENTATLAB_SHUTDOWN_GRACE_MS`, default 10000). */
  readonly shutdownGraceMs: number;
  /** Secret that signs run tokens (`MENTATLAB_TOKEN_SECRET`; generated into the data dir when unset). */
  readonly tokenSecret: string;
  /** Secret that signs presigned media URLs (`MENTATLAB_PRESIGN_SECRET`; generated when unset). */
  readonly presignSecret: string;
}

export function meshConfigFromEnv(env: Env): MeshConfig {
  const port = integer(env, "PORT", 8080);
  const host = env.HOST ?? "127.0.0.1";
  const dataDir = resolve(env.MENTATLAB_DATA_DIR ?? ".mentatlab");
  return {
    host,
    port,
    dataDir,
    publicUrl: env.MENTATLAB_PUBLIC_URL ?? `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${port}`,
    corsOrigins: (env.MENTATLAB_CORS_ORIGINS ?? "").split(",").map((o) => o.trim()).filter(Boolean),
    maxMessageBytes: integer(env, "MENTATLAB_MAX_MESSAGE_BYTES", 8 * 1024 * 1024),
    shutdownGraceMs: integer(env, "MENTATLAB_SHUTDOWN_GRACE_MS", 10_000),
    tokenSecret: env.MENTATLAB_TOKEN_SECRET ?? persistentSecret(dataDir, "token.secret"),
    presignSecret: env.MENTATLAB_PRESIGN_SECRET ?? persistentSecret(dataDir, "presign.secret"),
  };
}

/** A non-negative integer from the environment, or a start-up error naming the variable. */
export function integer(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  }
  return value;
}

// Kept in the data dir so that tokens and presigned URLs survive a restart of the embedded default.
function persistentSecret(dataDir: string, name: string): string {
  const file = join(dataDir, name);
  if (!existsSync(file)) {
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(file, randomBytes(32).toString("base64url"), { mode: 0o600 });
  }
  return readFileSync(file, "utf8").trim();
}
