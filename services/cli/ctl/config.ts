import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { choiceVar, ConfigError, type Env } from "../../shared/env.js";

export type HttpVersion = "1.1" | "2";
export type OutputFormat = "json" | "text";

/** Everything mentatctl needs to reach the gateway; flags win over the environment. */
export interface CtlConfig {
  /** Gateway base URL (`--url`, `MENTATLAB_URL`, default `http://127.0.0.1:8080`). */
  readonly url: string;
  /** Bearer API key; undefined sends no credentials (the gateway then answers `unauthenticated`). */
  readonly apiKey: string | undefined;
  /** HTTP version of the Connect transport (`--http1`, `MENTATLAB_HTTP_VERSION`, default `2`). */
  readonly httpVersion: HttpVersion;
  /** How results are printed (`--output`, `MENTATLAB_OUTPUT`, default `text`). */
  readonly output: OutputFormat;
  /** How long a transfer or watch keeps retrying without progress (`MENTATLAB_RETRY_SECONDS`, default 60). */
  readonly retrySeconds: number;
}

/** Flags given on the command line; each one, when set, overrides its environment variable. */
export interface CtlFlags {
  readonly url?: string | undefined;
  readonly key?: string | undefined;
  readonly http1?: boolean | undefined;
  readonly output?: string | undefined;
}

export const defaultUrl = "http://127.0.0.1:8080";
/** Long enough for a server restart (or a gateway rollout) to finish under a running transfer. */
export const defaultRetrySeconds = 60;

/**
 * Resolves the configuration. Without `--key` or `MENTATLAB_API_KEY` the development admin key is
 * read from `$MENTATLAB_DATA_DIR/dev-admin.key` (default `.mentatlab/dev-admin.key`), where
 * `npm start` stores it, so a fresh checkout works with no setup.
 */
export function ctlConfig(flags: CtlFlags, env: Env, cwd: string): CtlConfig {
  const output = flags.output ?? env.MENTATLAB_OUTPUT ?? "text";
  if (output !== "json" && output !== "text") {
    throw new Error(`output must be "json" or "text", got "${output}"`);
  }
  const httpVersion = flags.http1 ? "1.1" : choiceVar(env, "MENTATLAB_HTTP_VERSION", ["1.1", "2"], "2");
  const url = (flags.url ?? nonEmpty(env.MENTATLAB_URL) ?? defaultUrl).replace(/\/+$/, "");
  if (!/^https?:\/\/[^/]+/.test(url)) {
    throw new Error(`gateway URL must start with http:// or https://, got "${url}"`);
  }
  const retryText = nonEmpty(env.MENTATLAB_RETRY_SECONDS) ?? String(defaultRetrySeconds);
  const retrySeconds = Number(retryText);
  if (!/^\d+(\.\d+)?$/.test(retryText) || retrySeconds > 86_400) {
    throw new ConfigError("MENTATLAB_RETRY_SECONDS", "a number of seconds from 0 to 86400", retryText);
  }
  return { url, apiKey: flags.key ?? nonEmpty(env.MENTATLAB_API_KEY) ?? devKey(env, cwd), httpVersion, output, retrySeconds };
}

function devKey(env: Env, cwd: string): string | undefined {
  const file = join(resolve(cwd, nonEmpty(env.MENTATLAB_DATA_DIR) ?? ".mentatlab"), "dev-admin.key");
  return existsSync(file) ? nonEmpty(readFileSync(file, "utf8")) : undefined;
}

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed === "" ? undefined : trimmed;
}
