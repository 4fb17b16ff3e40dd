import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { MeshClients } from "./clients.js";

const repo = fileURLToPath(new URL("../../../", import.meta.url));

/** Registers an example agent, `examples/agents/<name>/manifest.yaml`, exactly as written. */
export function registerExample(clients: MeshClients, name: string): Promise<void> {
  return registerManifest(clients, `${repo}examples/agents/${name}/manifest.yaml`);
}

/** Registers the manifest at `path` as YAML text, the way `mentatctl` would. */
export async function registerManifest(clients: MeshClients, path: string): Promise<void> {
  await clients.registry.registerAgent({ source: { source: { case: "text", value: await readFile(path, "utf8") } } });
}

/** The text of an example flow, `examples/flows/<name>.yaml`. */
export function exampleFlow(name: string): Promise<string> {
  return readFile(`${repo}examples/flows/${name}.yaml`, "utf8");
}
