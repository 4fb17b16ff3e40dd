import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL(".", import.meta.url));

/** Paths of every example agent manifest, `examples/agents/<name>/manifest.yaml`. */
export async function exampleManifestPaths(): Promise<string[]> {
  const agents = await readdir(join(root, "agents"), { withFileTypes: true });
  const paths: string[] = [];
  for (const agent of agents.filter((entry) => entry.isDirectory())) {
    const files = await readdir(join(root, "agents", agent.name));
    if (files.includes("manifest.yaml")) paths.push(join(root, "agents", agent.name, "manifest.yaml"));
  }
  return paths.sort();
}

/** Paths of every example flow, `examples/flows/*.yaml`. */
export async function exampleFlowPaths(): Promise<string[]> {
  return (await readdir(join(root, "flows")))
    .filter((name) => name.endsWith(".yaml"))
    .sort()
    .map((name) => join(root, "flows", name));
}

/** The text of an example file. */
export function readExample(path: string): Promise<string> {
  return readFile(path, "utf8");
}
