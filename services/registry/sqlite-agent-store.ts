import type { DatabaseSync, StatementSync } from "node:sqlite";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { type AgentManifest, AgentManifestSchema } from "../../gen/mentatlab/v1/registry_pb.js";
import { databaseCall } from "../shared/sqlite.js";
import type { AgentStore } from "./agent-store.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS agents (
  id TEXT NOT NULL,
  version TEXT NOT NULL,
  manifest BLOB NOT NULL,
  PRIMARY KEY (id, version)
) WITHOUT ROWID;
`;

const WHAT = "the agent registry database";

/** Manifests in the embedded database (the embedded default), one row per id and version. */
export class SqliteAgentStore implements AgentStore {
  private readonly upsert: StatementSync;
  private readonly byId: StatementSync;
  private readonly byPrefix: StatementSync;

  constructor(db: DatabaseSync) {
    databaseCall(WHAT, () => db.exec(SCHEMA));
    this.upsert = db.prepare("INSERT INTO agents (id, version, manifest) VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET manifest = excluded.manifest");
    this.byId = db.prepare("SELECT manifest FROM agents WHERE id = ?");
    // substr rather than LIKE: ids may hold `_`, which LIKE reads as a wildcard.
    this.byPrefix = db.prepare("SELECT manifest FROM agents WHERE substr(id, 1, length(?1)) = ?1");
  }

  async put(manifest: AgentManifest): Promise<void> {
    databaseCall(WHAT, () => this.upsert.run(manifest.id, manifest.version, toBinary(AgentManifestSchema, manifest)));
  }

  async versions(id: string): Promise<AgentManifest[]> {
    return decodeAll(databaseCall(WHAT, () => this.byId.all(id)));
  }

  async list(idPrefix: string): Promise<AgentManifest[]> {
    return decodeAll(databaseCall(WHAT, () => this.byPrefix.all(idPrefix)));
  }

  /** The database connection belongs to whoever opened it. */
  async close(): Promise<void> {}
}

function decodeAll(rows: unknown[]): AgentManifest[] {
  return (rows as { manifest: Uint8Array }[]).map((row) => fromBinary(AgentManifestSchema, row.manifest));
}
