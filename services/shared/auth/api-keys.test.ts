import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { configuredApiKeys, loadOrCreateDevKey, parseApiKeys } from "./api-keys.js";

describe("parseApiKeys", () => {
  it("reads KEY=USER@WORKSPACE:ROLE[+ROLE] entries", () => {
    const keys = parseApiKeys("key-aaaaaaaaaaaaaaaa=alice@acme:multimodal_producer+multimodal_consumer, key-bbbbbbbbbbbbbbbb=bob@acme:admin", "env");
    expect(keys).toEqual([
      { key: "key-aaaaaaaaaaaaaaaa", user: "alice", workspace: "acme", roles: ["multimodal_producer", "multimodal_consumer"] },
      { key: "key-bbbbbbbbbbbbbbbb", user: "bob", workspace: "acme", roles: ["admin"] },
    ]);
  });

  it("reports every bad entry at once without echoing the secret", () => {
    let message = "";
    try {
      parseApiKeys("secret-secret-secret=alice@acme:wizard\nnonsense\nshort=bob@acme:admin", "keys.txt");
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain("keys.txt");
    expect(message).toContain("unknown role(s) wizard");
    expect(message).toContain('"…" is not KEY=USER@WORKSPACE:ROLE');
    expect(message).toContain("shorter than 16 characters");
    expect(message).not.toContain("secret-secret-secret");
    // A ConfigError: `mentatlab serve` prints it as one line naming the variable.
    expect(message).toMatch(/^MENTATLAB_API_KEYS must be KEY=USER@WORKSPACE:ROLE\[\+ROLE\.\.\.\] entries: invalid API keys in keys\.txt: /);
    expect(message).not.toContain("\n");
  });

  it("reads a keys file with comments", () => {
    const dir = mkdtempSync(join(tmpdir(), "keys-"));
    const file = join(dir, "keys");
    writeFileSync(file, "# team keys\nkey-cccccccccccccccc=carol@lab:multimodal_consumer # carol\n");
    expect(configuredApiKeys({ MENTATLAB_API_KEYS_FILE: file })).toHaveLength(1);
  });
});

describe("loadOrCreateDevKey", () => {
  it("creates a private admin key once and reuses it", () => {
    const dir = mkdtempSync(join(tmpdir(), "devkey-"));
    const first = loadOrCreateDevKey(dir);
    expect(first.roles).toEqual(["admin"]);
    expect(loadOrCreateDevKey(dir).key).toBe(first.key);
    expect(readFileSync(join(dir, "dev-admin.key"), "utf8").trim()).toBe(first.key);
    expect(statSync(join(dir, "dev-admin.key")).mode & 0o777).toBe(0o600);
  });
});
