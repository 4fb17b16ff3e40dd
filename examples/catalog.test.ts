import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { PinValueSchema, type PinValue } from "../gen/mentatlab/v1/common_pb.js";
import type { AgentManifest } from "../gen/mentatlab/v1/registry_pb.js";
import { checkFlow } from "../services/orchestrator/flow-validate.js";
import { parseFlowText } from "../services/orchestrator/flow-parse.js";
import { AgentCatalog } from "../services/registry/agent-catalog.js";
import { parseManifestText } from "../services/registry/manifest-parse.js";
import { validateManifest } from "../services/registry/manifest-validate.js";
import { MemoryAgentStore } from "../services/registry/memory-agent-store.js";
import { exampleFlowPaths, exampleManifestPaths, readExample } from "./catalog.js";

async function loadManifests(): Promise<AgentManifest[]> {
  const manifests: AgentManifest[] = [];
  for (const path of await exampleManifestPaths()) {
    const parsed = parseManifestText(await readExample(path));
    if (!parsed.manifest) throw new Error(`${path} is not a manifest`);
    manifests.push(parsed.manifest);
  }
  return manifests;
}

const media = (id: string, mimeType: string): PinValue =>
  create(PinValueSchema, { value: { case: "media", value: { id, mimeType, sizeBytes: 1000n, sha256: "0".repeat(64) } } });
const text = (value: string): PinValue => create(PinValueSchema, { value: { case: "text", value } });

/** What a client submits with each example flow. */
const submittedInputs: Record<string, Record<string, PinValue>> = {
  "examples.image-thumbnail-describe": { "thumbnail.image": media("img", "image/png") },
  "examples.text-tts-analysis": { "tts.text": text("hello") },
  "examples.video-clip-describe": { "clip.video": media("vid", "video/mp4") },
  "examples.python-text-stats": { "stats.text": text("hello") },
};

describe("example agents and flows", () => {
  it("every manifest parses and passes the registry's validation", async () => {
    const paths = await exampleManifestPaths();
    expect(paths.length).toBeGreaterThanOrEqual(6);
    for (const path of paths) {
      const parsed = parseManifestText(await readExample(path));
      expect(parsed.violations.list, path).toEqual([]);
      expect(parsed.manifest && validateManifest(parsed.manifest), path).toEqual([]);
    }
  });

  it("every flow validates against the example agents with its documented inputs", async () => {
    const store = new MemoryAgentStore();
    for (const manifest of await loadManifests()) await store.put(manifest);
    const catalog = new AgentCatalog(store);
    const paths = await exampleFlowPaths();
    expect(paths.length).toBe(4);
    for (const path of paths) {
      const parsed = parseFlowText(await readExample(path));
      expect(parsed.violations.list, path).toEqual([]);
      const flow = parsed.flow;
      if (!flow) throw new Error(`${path} is not a flow`);
      const inputs = submittedInputs[flow.meta?.id ?? ""];
      expect(inputs, `inputs for ${flow.meta?.id}`).toBeDefined();
      const check = await checkFlow(flow, inputs ?? {}, catalog);
      expect(check.violations, path).toEqual([]);
    }
  });
});
