import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import { type AgentManifest, AgentManifestSchema } from "../../gen/mentatlab/v1/registry_pb.js";
import { agentKey, type AgentStore } from "./agent-store.js";

/**
 * Manifests in process memory, for the embedded runtime. With `file`, every change is written through
 * to a JSON file (atomically, via rename) and loaded again at start, so registrations survive restarts.
 */
export class MemoryAgentStore implements AgentStore {
  private readonly manifests = new Map<string, AgentManifest>();

  constructor(private readonly file?: string) {
    if (file) this.load(file);
  }

  async put(manifest: AgentManifest): Promise<void> {
    this.manifests.set(agentKey(manifest), manifest);
    if (this.file) this.save(this.file);
  }

  async versions(id: string): Promise<AgentManifest[]> {
    return [...this.manifests.values()].filter((m) => m.id === id);
  }

  async list(idPrefix: string): Promise<AgentManifest[]> {
    return [...this.manifests.values()].filter((m) => m.id.startsWith(idPrefix));
  }

  async close(): Promise<void> {}

  private load(file: string): void {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
    for (const json of JSON.parse(text) as JsonValue[]) {
      const manifest = fromJson(AgentManifestSchema, json);
      this.manifests.set(agentKey(manifest), manifest);
    }
  }

  private save(file: string): void {
    mkdirSync(dirname(file), { recursive: true });
    const temp = `${file}.${process.pid}.tmp`;
    writeFileSync(temp, JSON.stringify([...this.manifests.values()].map((m) => toJson(AgentManifestSchema, m))));
    renameSync(temp, file);
  }
}
