import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { afterAll, describe, expect, it } from "vitest";
import { AgentManifestSchema } from "../../gen/mentatlab/v1/registry_pb.js";
import { describeAgentStoreConformance } from "./agent-store.conformance.js";
import { MemoryAgentStore } from "./memory-agent-store.js";

const dir = mkdtempSync(join(tmpdir(), "agents-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describeAgentStoreConformance("memory", async () => new MemoryAgentStore());
let files = 0;
describeAgentStoreConformance("memory with a JSON file", async () => new MemoryAgentStore(join(dir, `agents-${files++}.json`)));

describe("MemoryAgentStore persistence", () => {
  it("loads what an earlier instance wrote to its file", async () => {
    const file = join(dir, "not-yet-created", "persist.json");
    await new MemoryAgentStore(file).put(create(AgentManifestSchema, { id: "org.example.a", version: "1.0.0", command: ["x"] }));
    expect((await new MemoryAgentStore(file).versions("org.example.a")).map((m) => m.command)).toEqual([["x"]]);
  });
});
