import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { ConfigError, type Env } from "../env.js";
import { assignableRoles } from "./roles.js";

/** Who an API key belongs to. */
export interface ApiKeyEntry {
  readonly key: string;
  readonly user: string;
  readonly workspace: string;
  readonly roles: readonly string[];
}

/**
 * Parses `KEY=USER@WORKSPACE:ROLE[+ROLE...]` entries separated by commas or new lines (the keys file
 * uses one per line; `#` starts a comment). Throws one error naming every bad entry, so a typo in
 * configuration stops start-up instead of locking someone out silently.
 */
export function parseApiKeys(text: string, source: string, variable = "MENTATLAB_API_KEYS"): ApiKeyEntry[] {
  const entries: ApiKeyEntry[] = [];
  const problems: string[] = [];
  const items = text
    .split(/[,\n]/)
    .map((line) => line.replace(/#.*$/, "").trim())
    .filter((line) => line.length > 0);
  for (const item of items) {
    const match = /^([^=\s]+)=([^@\s]+)@([^:\s]+):([a-z_+]+)$/.exec(item);
    if (!match) {
      problems.push(`"${redact(item)}" is not KEY=USER@WORKSPACE:ROLE[+ROLE...]`);
      continue;
    }
    const [, key, user, workspace, roleList] = match as unknown as [string, string, string, string, string];
    const roles = roleList.split("+");
    const unknown = roles.filter((r) => !(assignableRoles as readonly string[]).includes(r));
    if (unknown.length > 0) {
      problems.push(`key for ${user}@${workspace} has unknown role(s) ${unknown.join(", ")}; use ${assignableRoles.join(", ")}`);
      continue;
    }
    if (key.length < 16) {
      problems.push(`key for ${user}@${workspace} is shorter than 16 characters`);
      continue;
    }
    entries.push({ key, user, workspace, roles });
  }
  if (problems.length > 0) {
    // The reason, never the value: keys are secrets. One line, as the CLI prints a ConfigError.
    throw new ConfigError(variable, "KEY=USER@WORKSPACE:ROLE[+ROLE...] entries", "", `invalid API keys in ${source}: ${problems.join("; ")}`);
  }
  return entries;
}

function redact(item: string): string {
  const eq = item.indexOf("=");
  return eq > 0 ? `…${item.slice(eq)}` : "…";
}

/** The development admin key `npm start` creates when no keys are configured, kept across restarts. */
export function loadOrCreateDevKey(dataDir: string): ApiKeyEntry {
  const file = join(dataDir, "dev-admin.key");
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `mlk_dev_${randomBytes(24).toString("base64url")}\n`, { mode: 0o600 });
  }
  chmodSync(file, 0o600);
  return { key: readFileSync(file, "utf8").trim(), user: "dev", workspace: "default", roles: ["admin"] };
}

/** Keys from `MENTATLAB_API_KEYS` and `MENTATLAB_API_KEYS_FILE`; empty when neither is set. */
export function configuredApiKeys(env: Env): ApiKeyEntry[] {
  const keys: ApiKeyEntry[] = [];
  if (env.MENTATLAB_API_KEYS) keys.push(...parseApiKeys(env.MENTATLAB_API_KEYS, "MENTATLAB_API_KEYS"));
  if (env.MENTATLAB_API_KEYS_FILE) {
    keys.push(...parseApiKeys(readFileSync(env.MENTATLAB_API_KEYS_FILE, "utf8"), env.MENTATLAB_API_KEYS_FILE, "MENTATLAB_API_KEYS_FILE"));
  }
  return keys;
}
