import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ConfigError, type Env } from "./env.js";
import { minTokenSecretLength } from "./run-token.js";

// The one Env type lives in ./env.ts with its readers; re-exported for the importers of this module.
export type { Env };

/**
 * Settings every MentatLab process shares. The listening socket is configured by the server's own
 * config (services/server/config.ts); each service reads the rest in its folder's config.ts.
 */
export interface MeshConfig {
  /** Where embedded backends keep their files (`MENTATLAB_DATA_DIR`, default `./.mentatlab`). */
  readonly dataDir: string;
  /** Secret that signs run tokens (`MENTATLAB_TOKEN_SECRET`; generated into the data dir when unset). */
  readonly tokenSecret: string;
  /** Secret that signs presigned media URLs (`MENTATLAB_PRESIGN_SECRET`; generated when unset). */
  readonly presignSecret: string;
}

export function meshConfigFromEnv(env: Env): MeshConfig {
  const dataDir = resolve(env.MENTATLAB_DATA_DIR ?? ".mentatlab");
  return {
    dataDir,
    tokenSecret: tokenSecretOf(env) ?? persistentSecret(dataDir, "token.secret"),
    presignSecret: env.MENTATLAB_PRESIGN_SECRET ?? persistentSecret(dataDir, "presign.secret"),
  };
}

/** The token secret set in the environment, checked here so a short one stops start-up in one line. */
function tokenSecretOf(env: Env): string | undefined {
  const secret = env.MENTATLAB_TOKEN_SECRET;
  if (secret !== undefined && secret.length < minTokenSecretLength) {
    // The reason, never the value: a secret is not echoed.
    throw new ConfigError("MENTATLAB_TOKEN_SECRET", `at least ${minTokenSecretLength} characters`, "", `it has ${secret.length}`);
  }
  return secret;
}

// Kept in the data dir so that run tokens and presigned URLs survive a restart of the embedded default.
// Distributed processes must share one value through the environment instead.
function persistentSecret(dataDir: string, name: string): string {
  const file = join(dataDir, name);
  if (!existsSync(file)) {
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(file, randomBytes(32).toString("base64url"), { mode: 0o600 });
  }
  return readFileSync(file, "utf8").trim();
}
