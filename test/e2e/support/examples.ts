import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { parse, stringify } from "yaml";
import type { MeshClients } from "./clients.js";

const repo = fileURLToPath(new URL("../../../", import.meta.url));

/**
 * Registers an example agent (`examples/agents/<name>/manifest.yaml`) with its sidecar pointed at the
 * mesh under test instead of the `npm start` default port.
 */
export function registerExample(clients: MeshClients, name: string, gatewayUrl: string): Promise<void> {
  return registerManifest(clients, `${repo}examples/agents/${name}/manifest.yaml`, gatewayUrl);
}

/** Registers the manifest at `path`, pointing its sidecar at `gatewayUrl`. */
export async function registerManifest(clients: MeshClients, path: string, gatewayUrl: string): Promise<void> {
  const manifest = parse(await readFile(path, "utf8")) as Record<string, unknown>;
  const env = (manifest.env ?? {}) as Record<string, string>;
  if (env.MENTATLAB_GATEWAY_URL) manifest.env = { ...env, MENTATLAB_GATEWAY_URL: gatewayUrl };
  await clients.registry.registerAgent({ source: { source: { case: "text", value: stringify(manifest) } } });
}

/** The text of an example flow, `examples/flows/<name>.yaml`. */
export function exampleFlow(name: string): Promise<string> {
  return readFile(`${repo}examples/flows/${name}.yaml`, "utf8");
}

/** Where the repository is: agents' relative commands resolve from here. */
export const repoRoot = repo;
