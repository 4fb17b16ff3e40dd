import type { AgentManifest } from "../../gen/mentatlab/v1/registry_pb.js";

/**
 * Where validated manifests live. Backends only store and fetch; ordering, version resolution and
 * validation happen above them so every backend behaves alike (see agent-store.conformance.ts).
 */
export interface AgentStore {
  /** Stores a manifest, replacing one with the same id and version. */
  put(manifest: AgentManifest): Promise<void>;
  /** Every stored version of one agent, in no particular order. */
  versions(id: string): Promise<AgentManifest[]>;
  /** Every stored manifest whose id starts with `idPrefix`, in no particular order. */
  list(idPrefix: string): Promise<AgentManifest[]>;
  close(): Promise<void>;
}

export function agentKey(manifest: Pick<AgentManifest, "id" | "version">): string {
  return `${manifest.id}@${manifest.version}`;
}
