import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { AgentManifestSchema, ResourceProfile, ResourcesSchema } from "../../gen/mentatlab/v1/registry_pb.js";
import { formatBytes, parseQuantity } from "./quantity.js";
import { calculateResources } from "./resources.js";

const GiB = 2 ** 30;
const manifest = (resourceProfile: ResourceProfile, resources?: { cpu?: string; memory?: string; ephemeralStorage?: string; gpu?: number }) =>
  create(AgentManifestSchema, { resourceProfile, ...(resources ? { resources: create(ResourcesSchema, resources) } : {}) });

describe("calculateResources", () => {
  it.each([
    [ResourceProfile.TEXT_PROCESSING, "500m", "1Gi", "1Gi", 0],
    [ResourceProfile.IMAGE_PROCESSING, "2000m", "4Gi", "10Gi", 0],
    [ResourceProfile.AUDIO_PROCESSING, "1000m", "2Gi", "5Gi", 0],
    [ResourceProfile.VIDEO_PROCESSING, "4000m", "8Gi", "50Gi", 1],
    [ResourceProfile.UNSPECIFIED, "500m", "1Gi", "1Gi", 0],
  ])("profile %s gives the design's numbers", (profile, cpu, memory, ephemeral, gpu) => {
    const r = calculateResources(manifest(profile), 10 * 2 ** 20);
    expect([r.cpu, r.memory, r.ephemeralStorage, r.gpu]).toEqual([cpu, memory, ephemeral, gpu]);
  });

  it("leaves inputs of exactly 1 GiB unscaled", () => {
    expect(calculateResources(manifest(ResourceProfile.TEXT_PROCESSING), GiB).memory).toBe("1Gi");
  });

  it("scales memory to 4x and ephemeral storage to 10x an input over 1 GiB", () => {
    const r = calculateResources(manifest(ResourceProfile.TEXT_PROCESSING), 2 * GiB);
    expect(r.memoryBytes).toBe(8 * GiB);
    expect(r.memory).toBe("8Gi");
    expect(r.ephemeralStorage).toBe("20Gi");
    expect(r.cpu).toBe("500m");
  });

  it("never lowers a profile's allowance when scaling", () => {
    const r = calculateResources(manifest(ResourceProfile.VIDEO_PROCESSING), 1.5 * GiB);
    expect(r.memory).toBe("8Gi");
    expect(r.ephemeralStorage).toBe("50Gi");
  });

  it("lets explicit resources override the profile field by field", () => {
    const r = calculateResources(manifest(ResourceProfile.IMAGE_PROCESSING, { cpu: "250m", memory: "512Mi", gpu: 2 }), 0);
    expect([r.cpu, r.memory, r.ephemeralStorage, r.gpu]).toEqual(["250m", "512Mi", "10Gi", 2]);
  });
});

describe("quantities", () => {
  it.each([
    ["500m", 0.5],
    ["2", 2],
    ["1Gi", GiB],
    ["1.5Gi", 1.5 * GiB],
    ["1G", 1e9],
    ["128974848", 128974848],
    ["129e6", 129e6],
    ["123Mi", 123 * 2 ** 20],
  ])("parses %s", (text, value) => expect(parseQuantity(text)).toBe(value));

  it.each(["", "1GB", "abc", "-1Gi", "1 Gi", "Gi"])("rejects %j", (text) => expect(parseQuantity(text)).toBeUndefined());

  it("formats bytes in the largest exact unit", () => {
    expect(formatBytes(1536 * 2 ** 20)).toBe("1536Mi");
    expect(formatBytes(3 * GiB)).toBe("3Gi");
    expect(formatBytes(1000)).toBe("1000");
  });
});
