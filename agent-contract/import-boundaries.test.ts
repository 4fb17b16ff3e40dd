import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** Production TypeScript files under `folder` (tests and test support excluded), relative to the repository. */
function sourcesUnder(folder: string): string[] {
  return readdirSync(join(repo, folder), { recursive: true, encoding: "utf8" })
    .filter((file) => file.endsWith(".ts") && !file.endsWith(".test.ts") && !file.split("/").includes("testing"))
    .map((file) => join(folder, file));
}

/** Each relative import of `file`, as a path relative to the repository. */
function relativeImports(file: string): string[] {
  const text = readFileSync(join(repo, file), "utf8");
  return [...text.matchAll(/from "(\.[^"]+)"/g)].map((match) => relative(repo, resolve(join(repo, dirname(file)), match[1] ?? "")));
}

function importsInto(folders: readonly string[], targets: readonly string[]): string[] {
  return folders.flatMap((folder) =>
    sourcesUnder(folder).flatMap((file) => relativeImports(file).filter((target) => targets.some((t) => target.startsWith(t))).map((target) => `${file} -> ${target}`)),
  );
}

describe("the agent contract sits below the orchestrator and the sidecar", () => {
  it("imports only generated code and itself", () => {
    const outside = sourcesUnder("agent-contract").flatMap((file) =>
      relativeImports(file)
        .filter((target) => !target.startsWith("agent-contract/") && !target.startsWith("gen/"))
        .map((target) => `${file} -> ${target}`),
    );
    expect(outside).toEqual([]);
  });

  it("is how they meet: services never import the sidecar, the sidecar never imports the control plane", () => {
    expect(importsInto(["services"], ["agent-sidecar/"])).toEqual([]);
    expect(importsInto(["agent-sidecar"], ["services/orchestrator/", "services/registry/", "services/mesh/"])).toEqual([]);
  });
});
