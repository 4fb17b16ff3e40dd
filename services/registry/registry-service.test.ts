import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { AgentManifestSchema, AgentRegistryService, ValidateManifestResponseSchema } from "../../gen/mentatlab/v1/registry_pb.js";
import { PinType } from "../../gen/mentatlab/v1/common_pb.js";
import { inMemoryClient } from "../../test/support/in-memory.js";
import { MemoryAgentStore } from "./memory-agent-store.js";
import { createRegistryService } from "./registry-service.js";

function setup() {
  const store = new MemoryAgentStore();
  const client = inMemoryClient(AgentRegistryService, (router) => router.service(AgentRegistryService, createRegistryService(store)));
  return { store, client };
}

const text = (id: string, version: string) =>
  `{"id": "${id}", "version": "${version}", "command": ["node", "a.js"], "inputs": [{"name": "prompt", "type": "text", "required": true}]}`;
const register = (client: ReturnType<typeof setup>["client"], id: string, version: string) =>
  client.registerAgent({ source: { source: { case: "text", value: text(id, version) } } });

describe("AgentRegistryService", () => {
  it("registers a manifest from text and returns it with a registration time", async () => {
    const { client } = setup();
    const { agent } = await register(client, "org.example.echo", "1.0.0");
    expect(agent?.inputs[0]?.type).toBe(PinType.TEXT);
    expect(agent?.registeredAt).toBeDefined();
    const got = await client.getAgent({ id: "org.example.echo" });
    expect(got.agent?.version).toBe("1.0.0");
  });

  it("rejects an invalid manifest with every violation in the message and the details, storing nothing", async () => {
    const { client, store } = setup();
    const err = await client
      .registerAgent({ source: { source: { case: "text", value: "id: bad\nversion: x\ninputs: [{name: pic, type: image}]" } } })
      .catch((e: unknown) => ConnectError.from(e));
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.InvalidArgument);
    expect((err as ConnectError).message).toContain("manifest.id_reverse_dns");
    expect((err as ConnectError).message).toContain("pin.media_metadata_required");
    const [details] = (err as ConnectError).findDetails(ValidateManifestResponseSchema);
    expect(details?.valid).toBe(false);
    expect(details?.violations.map((v) => v.rule).sort()).toEqual([
      "manifest.id_reverse_dns",
      "manifest.runnable",
      "manifest.version_semver",
      "pin.media_metadata_required",
    ]);
    expect(await store.list("")).toEqual([]);
  });

  it("validates without storing", async () => {
    const { client, store } = setup();
    const ok = await client.validateManifest({ source: { source: { case: "text", value: text("org.example.echo", "1.0.0") } } });
    expect(ok.valid).toBe(true);
    expect(ok.manifest?.id).toBe("org.example.echo");
    const bad = await client.validateManifest({ source: { source: { case: "text", value: "[1, 2" } } });
    expect(bad.valid).toBe(false);
    expect(bad.violations[0]?.rule).toBe("document.syntax");
    expect(await store.list("")).toEqual([]);
  });

  it("validates structured manifests too", async () => {
    const { client } = setup();
    const res = await client.validateManifest({ source: { source: { case: "manifest", value: { id: "org.example.x", version: "1.0.0" } } } });
    expect(res.violations.map((v) => v.rule)).toEqual(["manifest.runnable"]);
  });

  it("resolves the newest version, an exact version and a range", async () => {
    const { client } = setup();
    for (const v of ["1.0.0", "1.10.0", "1.9.0", "2.0.0-beta.1"]) await register(client, "org.example.echo", v);
    expect((await client.getAgent({ id: "org.example.echo" })).agent?.version).toBe("2.0.0-beta.1");
    expect((await client.getAgent({ id: "org.example.echo", version: "1.9.0" })).agent?.version).toBe("1.9.0");
    expect((await client.getAgent({ id: "org.example.echo", version: "^1.0.0" })).agent?.version).toBe("1.10.0");
    await expect(client.getAgent({ id: "org.example.echo", version: "3.x" })).rejects.toMatchObject({ code: Code.NotFound });
    await expect(client.getAgent({ id: "org.example.nope" })).rejects.toMatchObject({ code: Code.NotFound });
    await expect(client.getAgent({ id: "org.example.echo", version: "not a range!" })).rejects.toMatchObject({ code: Code.InvalidArgument });
  });

  it("lists newest first per agent, pages through, and can include every version", async () => {
    const { client } = setup();
    for (const id of ["org.example.c", "org.example.a", "org.example.b"]) {
      for (const v of ["1.0.0", "1.2.0"]) await register(client, id, v);
    }
    await register(client, "com.other.z", "1.0.0");
    const first = await client.listAgents({ idPrefix: "org.example.", pageSize: 2 });
    expect(first.agents.map((a) => `${a.id}@${a.version}`)).toEqual(["org.example.a@1.2.0", "org.example.b@1.2.0"]);
    // A version registered between pages must not shift the next page.
    await register(client, "org.example.a", "1.3.0");
    const second = await client.listAgents({ idPrefix: "org.example.", pageSize: 2, pageToken: first.nextPageToken });
    expect(second.agents.map((a) => `${a.id}@${a.version}`)).toEqual(["org.example.c@1.2.0"]);
    expect(second.nextPageToken).toBe("");
    const all = await client.listAgents({ idPrefix: "org.example.b", allVersions: true });
    expect(all.agents.map((a) => a.version)).toEqual(["1.2.0", "1.0.0"]);
    await expect(client.listAgents({ pageToken: "garbage" })).rejects.toMatchObject({ code: Code.InvalidArgument });
  });

  it("rejects a structured manifest whose details carry the parsed manifest", async () => {
    const { client } = setup();
    const err = ConnectError.from(
      await client
        .registerAgent({ source: { source: { case: "manifest", value: create(AgentManifestSchema, { id: "org.x.y", version: "1.0.0" }) } } })
        .catch((e: unknown) => e),
    );
    expect(err.findDetails(ValidateManifestResponseSchema)[0]?.manifest?.id).toBe("org.x.y");
  });
});
