import { describe, expect, it } from "vitest";
import { PinType } from "../../gen/mentatlab/v1/common_pb.js";
import { Capability, ResourceProfile } from "../../gen/mentatlab/v1/registry_pb.js";
import { parseManifestText } from "./manifest-parse.js";
import { validateManifest } from "./manifest-validate.js";

function check(text: string) {
  const parsed = parseManifestText(text);
  const violations = [...parsed.violations.list, ...(parsed.manifest ? validateManifest(parsed.manifest) : [])];
  return { manifest: parsed.manifest, violations, rules: violations.map((v) => `${v.fieldPath} ${v.rule}`).sort() };
}

const originalStyle = `
id: org.mentatlab.image.thumbnail
version: 1.2.0
image: ghcr.io/mentatlab/thumbnail:1.2.0
runtime: python
description: Makes thumbnails
longRunning: false
resourceProfile: image_processing
inputs:
  - name: image
    type: image
    required: true
    metadata:
      acceptedMimeTypes: [image/png, image/jpeg]
      maxSize: 10Mi
      maxWidth: 8192
      maxHeight: 8192
outputs:
  - name: thumbnail
    type: image
    metadata: { mimeTypes: [image/png] }
  - name: log
    type: stream
capabilities: { streaming: true, progress: true, gpu: false }
env: [{ name: QUALITY, value: 90 }]
command: python agent.py
workingDir: /opt/agent
resources: { cpu: 1500m, memory: 3Gi, ephemeral: 5Gi }
`;

describe("manifest parsing", () => {
  it("reads the original project's camelCase manifest", () => {
    const { manifest, violations } = check(originalStyle);
    expect(violations).toEqual([]);
    expect(manifest?.resourceProfile).toBe(ResourceProfile.IMAGE_PROCESSING);
    expect(manifest?.inputs[0]?.media?.acceptedMimeTypes).toEqual(["image/png", "image/jpeg"]);
    expect(manifest?.inputs[0]?.media?.maxSizeBytes).toBe(10n * 2n ** 20n);
    expect(manifest?.outputs.map((p) => p.type)).toEqual([PinType.IMAGE, PinType.STREAM]);
    expect(manifest?.capabilities).toEqual([Capability.STREAMING, Capability.PROGRESS]);
    expect(manifest?.env).toEqual({ QUALITY: "90" });
    expect(manifest?.command).toEqual(["python", "agent.py"]);
    expect(manifest?.workingDir).toBe("/opt/agent");
    expect(manifest?.resources?.ephemeralStorage).toBe("5Gi");
  });

  it("reads our snake_case names and JSON", () => {
    const { manifest, violations } = check(
      JSON.stringify({
        id: "org.example.echo",
        version: "0.1.0",
        command: ["node", "echo.js"],
        long_running: true,
        resource_profile: "text_processing",
        inputs: [{ name: "text", type: "text", required: true }],
        outputs: [{ name: "text", type: "TEXT" }],
        capabilities: ["progress"],
        working_dir: "/tmp",
      }),
    );
    expect(violations).toEqual([]);
    expect(manifest?.longRunning).toBe(true);
    expect(manifest?.outputs[0]?.type).toBe(PinType.TEXT);
  });

  it("reports a syntax error as a violation", () => {
    expect(check("id: [unclosed").rules).toEqual([" document.syntax"]);
  });

  it("rejects a document that is not a mapping", () => {
    expect(check("- a\n- b").rules).toEqual([" document.shape"]);
  });
});

describe("manifest validation reports every violation at once", () => {
  it("finds all of them in one bad manifest", () => {
    const { rules, violations } = check(`
id: NotReverseDns
version: one
inputs:
  - { name: Image, type: image }
  - { name: clip, type: video, media: { accepted_mime_types: [audio/wav], max_duration_seconds: 3600000, max_width: 100000 } }
  - { name: sound, type: audio, media: { accepted_mime_types: [audio/*], max_sample_rate: 44, max_width: 10 } }
  - { name: sound, type: picture }
outputs:
  - { name: live, type: stream }
  - { name: note, type: text, required: true, media: { accepted_mime_types: [text/plain] } }
resourceProfile: quantum
resources: { cpu: lots, memory: 4GB }
capabilities: [gpu, teleport]
env: { INPUT_SPEC: x, "1BAD": y }
colour: blue
`);
    expect(rules).toEqual(
      [
        "capabilities[1] capability.known",
        "colour field.unknown",
        "resource_profile resources.profile_known",
        "inputs[3].type pin.type_known",
        "id manifest.id_reverse_dns",
        "version manifest.version_semver",
        "command manifest.runnable",
        "inputs[0].name pin.name",
        "inputs[0].media pin.media_metadata_required",
        "inputs[1].media.accepted_mime_types[0] media.mime_kind",
        "inputs[1].media.max_width media.dimension_sane",
        "inputs[1].media.max_duration_seconds media.duration_sane",
        "inputs[2].media.max_width media.limit_applicable",
        "inputs[2].media.max_sample_rate media.sample_rate_sane",
        "inputs[3].name pin.name_unique",
        "inputs[3].type pin.type_known",
        "outputs[1].required pin.required_output",
        "outputs[1].media pin.media_not_applicable",
        "resources.cpu resources.quantity",
        "resources.memory resources.quantity",
        "resource_profile resources.video_requires_gpu",
        "capabilities resources.gpu_capability",
        "outputs[0].type capability.streaming_required",
        "env.INPUT_SPEC manifest.env_reserved",
        "env.1BAD manifest.env_name",
      ].sort(),
    );
    for (const v of violations) {
      expect(v.message, v.rule).not.toBe("");
      expect(v.hint, v.rule).not.toBe("");
    }
  });

  it("accepts video agents that get a GPU through the profile or explicitly", () => {
    const video = (extra: string) => `
id: org.example.video
version: 1.0.0
image: example/video
inputs: [{ name: clip, type: video, media: { accepted_mime_types: [video/mp4] } }]
${extra}`;
    expect(check(video("resource_profile: video_processing")).violations).toEqual([]);
    expect(check(video("resources: { gpu: 1 }")).violations).toEqual([]);
    expect(check(video("")).rules).toEqual(["resource_profile resources.video_requires_gpu"]);
  });

  it("reports a type error with its path and keeps reading the rest", () => {
    const { rules } = check(`
id: org.example.x
version: 1.0.0
command: [node, x.js]
long_running: "yes"
inputs: { name: a }
`);
    expect(rules).toEqual(["inputs field.type", "long_running field.type"]);
  });
  it("reads warm_pool of a long_running agent and rejects it on others or out of range", () => {
    const base = "id: org.test.warm\nversion: 1.0.0\ncommand: [node, agent.js]\n";
    const warm = check(`${base}long_running: true\nwarm_pool: { size: 3, max_attempts_per_worker: 50 }`);
    expect(warm.violations).toEqual([]);
    expect(warm.manifest?.warmPool).toMatchObject({ size: 3, maxAttemptsPerWorker: 50 });
    expect(check(`${base}warmPool: { size: 100, maxAttemptsPerWorker: 1.5, workers: 2 }`).rules).toEqual([
      "warm_pool warm_pool.long_running",
      "warm_pool.max_attempts_per_worker warm_pool.max_attempts",
      "warm_pool.size warm_pool.size",
      "warm_pool.workers field.unknown",
    ]);
  });
});
