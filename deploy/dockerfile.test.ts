import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { importClosure } from "./validate/runtime-imports.js";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const dockerfile = readFileSync(join(repo, "deploy/Dockerfile"), "utf8");
const manifest = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

/** The instructions of one build stage, from its FROM line to the next. */
function stage(name: string): string {
  const start = dockerfile.search(new RegExp(`^FROM \\S+ AS ${name}$`, "m"));
  if (start < 0) throw new Error(`no stage ${name}`);
  const next = dockerfile.slice(start + 1).search(/^FROM /m);
  return next < 0 ? dockerfile.slice(start) : dockerfile.slice(start, start + 1 + next);
}

/** Top-level folders a stage copies from the build context. */
function copiedFolders(text: string): Set<string> {
  return new Set([...text.matchAll(/^COPY (?!--from)(\S+) /gm)].map((m) => (m[1] ?? "").split("/")[0] ?? ""));
}

describe("deploy/Dockerfile", () => {
  // The mesh image installs `npm ci --omit=dev`: everything its entry points import must be a dependency.
  const entries = ["bin/mentatlab.mjs", "services/cli/main.ts", "agent-sidecar/main.ts"];
  const closure = importClosure(repo, entries);

  it("the mesh stage is node:24-slim with production dependencies only", () => {
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:24-slim$/m);
    expect(stage("deps")).toMatch(/npm ci --omit=dev/);
    expect(stage("mesh")).toMatch(/COPY --from=deps \/app\/node_modules node_modules/);
    expect(stage("mesh")).toMatch(/^USER 10001:10001$/m);
  });

  it("the mesh entrypoint runs the server in the process tini signals (no npm, no tsx CLI between)", () => {
    // The image's Node is the pinned major, so bin/mentatlab.mjs serves in place rather than relaying.
    expect(stage("mesh")).toMatch(/^ENTRYPOINT \["\/usr\/bin\/tini", "--", "node", "bin\/mentatlab\.mjs"\]$/m);
    expect(stage("mesh")).toMatch(/^CMD \["serve", "embedded"\]$/m);
  });

  it("every package the entry points load at run time is a production dependency (tsx included)", () => {
    expect(closure.packages).toContain("tsx");
    expect(closure.packages.filter((name) => !(name in manifest.dependencies))).toEqual([]);
  });

  it("every source file the entry points load is copied into the mesh image", () => {
    expect(closure.files.length).toBeGreaterThan(50);
    const copied = copiedFolders(stage("mesh"));
    expect(closure.files.filter((file) => !copied.has(file.split("/")[0] ?? ""))).toEqual([]);
  });

  it("the example agents' image has their tools, apart from the mesh image", () => {
    expect(stage("example-agents")).toMatch(/apt-get install[^\n]*sox espeak-ng/);
    expect(stage("mesh")).not.toMatch(/espeak-ng|sox/);
    expect(stage("agent-sidecar")).toMatch(/agent-sidecar\/main\.ts/);
  });
});
