import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { createClient, createRouterTransport } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { AgentManifestSchema, AgentRegistryService } from "../../gen/mentatlab/v1/registry_pb.js";
import { StorageService } from "../../gen/mentatlab/v1/storage_pb.js";
import { StreamService } from "../../gen/mentatlab/v1/stream_pb.js";
import { inMemoryClient, testPrincipal } from "../../test/support/in-memory.js";
import { makeTempDir, removeTempDir } from "../../test/harness/index.js";
import { MemoryAgentStore } from "../registry/memory-agent-store.js";
import { RunTokenSigner } from "../shared/run-token.js";
import { orchestratorConfigFromEnv } from "./config.js";
import { createOrchestrator } from "./index.js";

// Storage and streams are never reached by registry calls.
const unused = createRouterTransport(() => undefined);
const deps = {
  storage: createClient(StorageService, unused),
  streams: createClient(StreamService, unused),
  runTokens: new RunTokenSigner("test-secret-0123456789"),
  hostEnv: process.env,
};

describe("the orchestrator's embedded database", () => {
  it("imports agents an earlier version kept in its registry file, once, and keeps new ones", async () => {
    const dataDir = makeTempDir("orchestrator-embedded");
    try {
      const registryFile = new MemoryAgentStore(join(dataDir, "agents.json"));
      await registryFile.put(create(AgentManifestSchema, { id: "org.example.old", version: "1.0.0", command: ["x"] }));
      const listed = async () => {
        const runtime = await createOrchestrator(orchestratorConfigFromEnv({}, dataDir), deps);
        try {
          const registry = inMemoryClient(AgentRegistryService, (router) => router.service(AgentRegistryService, runtime.registryImpl), testPrincipal());
          await registry.registerAgent({ source: { source: { case: "text", value: "id: org.example.new\nversion: 1.0.0\ncommand: [y]" } } });
          return (await registry.listAgents({})).agents.map((a) => a.id).sort();
        } finally {
          await runtime.close();
        }
      };
      expect(await listed()).toEqual(["org.example.new", "org.example.old"]);
      // The database is the registry from then on: the file is not read again.
      await registryFile.put(create(AgentManifestSchema, { id: "org.example.later", version: "1.0.0", command: ["z"] }));
      expect(await listed()).toEqual(["org.example.new", "org.example.old"]);
    } finally {
      removeTempDir(dataDir);
    }
  });
});
