import { create } from "@bufbuild/protobuf";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { PinType } from "../../gen/mentatlab/v1/common_pb.js";
import { AgentManifestSchema, Capability, PinSchema } from "../../gen/mentatlab/v1/registry_pb.js";
import type { AgentStore } from "./agent-store.js";

/** The behaviour every AgentStore backend must show; call once per backend from its test file. */
export function describeAgentStoreConformance(name: string, factory: () => Promise<AgentStore>): void {
  describe(`AgentStore conformance: ${name}`, () => {
    let store: AgentStore;
    beforeEach(async () => {
      store = await factory();
    });
    afterEach(async () => {
      await store.close();
    });

    const manifest = (id: string, version: string, description = "") =>
      create(AgentManifestSchema, {
        id,
        version,
        description,
        command: ["node", "agent.js"],
        capabilities: [Capability.STREAMING],
        inputs: [create(PinSchema, { name: "prompt", type: PinType.TEXT, required: true })],
        env: { MODE: "fast" },
      });

    it("returns what was stored, field for field", async () => {
      const m = manifest("org.example.echo", "1.0.0", "echoes");
      await store.put(m);
      expect(await store.versions("org.example.echo")).toEqual([m]);
    });

    it("keeps versions apart and replaces the same id and version", async () => {
      await store.put(manifest("org.example.echo", "1.0.0", "old"));
      await store.put(manifest("org.example.echo", "1.1.0"));
      await store.put(manifest("org.example.echo", "1.0.0", "new"));
      const versions = await store.versions("org.example.echo");
      expect(versions.map((m) => `${m.version}:${m.description}`).sort()).toEqual(["1.0.0:new", "1.1.0:"]);
    });

    it("does not confuse an id with another that extends it", async () => {
      await store.put(manifest("org.example.echo", "1.0.0"));
      await store.put(manifest("org.example.echoes", "1.0.0"));
      expect((await store.versions("org.example.echo")).map((m) => m.id)).toEqual(["org.example.echo"]);
    });

    it("lists by id prefix", async () => {
      await store.put(manifest("org.example.a", "1.0.0"));
      await store.put(manifest("org.example.b", "1.0.0"));
      await store.put(manifest("com.other.c", "1.0.0"));
      expect((await store.list("org.example.")).map((m) => m.id).sort()).toEqual(["org.example.a", "org.example.b"]);
      expect(await store.list("")).toHaveLength(3);
    });
  });
}
