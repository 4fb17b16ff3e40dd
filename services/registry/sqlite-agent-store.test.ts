import type { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { afterAll, describe, expect, it } from "vitest";
import { AgentManifestSchema } from "../../gen/mentatlab/v1/registry_pb.js";
import { makeTempDir, removeTempDir } from "../../test/harness/index.js";
import { openDatabase } from "../shared/sqlite.js";
import { describeAgentStoreConformance } from "./agent-store.conformance.js";
import { SqliteAgentStore } from "./sqlite-agent-store.js";

const dir = makeTempDir("agents-sqlite");
const opened: DatabaseSync[] = [];
afterAll(() => {
  for (const db of opened) db.close();
  removeTempDir(dir);
});
let files = 0;

describeAgentStoreConformance("sqlite", async () => {
  const db = openDatabase(join(dir, `conformance-${files++}.db`));
  opened.push(db);
  return new SqliteAgentStore(db);
});

describe("SqliteAgentStore", () => {
  it("keeps manifests when its file is opened again, and takes ids with LIKE wildcards literally", async () => {
    const file = join(dir, "reopen.db");
    const first = openDatabase(file);
    const before = new SqliteAgentStore(first);
    await before.put(create(AgentManifestSchema, { id: "org.example.a_b", version: "1.0.0", command: ["x"] }));
    await before.put(create(AgentManifestSchema, { id: "org.example.aXb", version: "1.0.0", command: ["y"] }));
    first.close();
    const second = openDatabase(file);
    opened.push(second);
    const after = new SqliteAgentStore(second);
    expect((await after.list("org.example.a_")).map((m) => m.command)).toEqual([["x"]]);
  });
});
