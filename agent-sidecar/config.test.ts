import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PinType } from "../gen/mentatlab/v1/common_pb.js";
import { loadSidecarConfig } from "./config.js";

const minimal = { MENTATLAB_RUN_ID: "r1", MENTATLAB_NODE_ID: "n1", MENTATLAB_RUN_TOKEN: "mlrun_x.y" };

describe("loadSidecarConfig", () => {
  it("fills documented defaults", () => {
    const config = loadSidecarConfig(minimal);
    expect(config.attempt).toBe(1);
    expect(config.gatewayUrl).toBe("http://127.0.0.1:8080");
    expect(config.listen).toBe(`${config.sharedDir}/sidecar.sock`);
    expect(config.sidecarToken.length).toBeGreaterThanOrEqual(32);
    expect(config.inputs.size).toBe(0);
    expect(config.plainBridge).toBe("");
    expect(loadSidecarConfig({ ...minimal, MENTATLAB_PLAIN_BRIDGE: "/mentatlab/shared/plain" }).plainBridge).toBe("/mentatlab/shared/plain");
  });

  it("parses inputs as proto JSON PinValues, params and output pin types", () => {
    const config = loadSidecarConfig({
      ...minimal,
      MENTATLAB_INPUTS_JSON: JSON.stringify({ prompt: { text: "hi" }, image: { media: { id: "o1", sizeBytes: "3", sha256: "ab" } } }),
      MENTATLAB_PARAMS_JSON: '{"width": 64}',
      MENTATLAB_OUTPUT_PINS_JSON: '{"thumbnail": "image", "audio": "STREAM"}',
    });
    expect(config.inputs.get("prompt")?.value).toEqual({ case: "text", value: "hi" });
    const image = config.inputs.get("image")?.value;
    expect(image?.case === "media" && image.value.sizeBytes).toBe(3n);
    expect(config.params).toEqual({ width: 64 });
    expect(config.outputPins.get("thumbnail")).toBe(PinType.IMAGE);
    expect(config.outputPins.get("audio")).toBe(PinType.STREAM);
  });

  it("reads inputs from MENTATLAB_INPUTS_FILE (a mounted Secret), however large, in place of MENTATLAB_INPUTS_JSON", () => {
    const dir = mkdtempSync(join(tmpdir(), "sidecar-inputs-"));
    try {
      // Over the 128 KiB Linux allows one environment string.
      const big = "x".repeat(300 * 1024);
      writeFileSync(join(dir, "inputs.json"), JSON.stringify({ prompt: { text: big } }));
      const config = loadSidecarConfig({
        ...minimal,
        MENTATLAB_INPUTS_FILE: join(dir, "inputs.json"),
        MENTATLAB_INPUTS_JSON: '{"other": {"text": "ignored"}}',
      });
      expect([...config.inputs.keys()]).toEqual(["prompt"]);
      expect(config.inputs.get("prompt")?.value).toEqual({ case: "text", value: big });
      expect(() => loadSidecarConfig({ ...minimal, MENTATLAB_INPUTS_FILE: join(dir, "missing.json") })).toThrow(
        /MENTATLAB_INPUTS_FILE: cannot read .*missing\.json/,
      );
      writeFileSync(join(dir, "bad.json"), "{");
      expect(() => loadSidecarConfig({ ...minimal, MENTATLAB_INPUTS_FILE: join(dir, "bad.json") })).toThrow(/MENTATLAB_INPUTS_FILE is not valid JSON/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("names the variable to fix", () => {
    expect(() => loadSidecarConfig({ ...minimal, MENTATLAB_RUN_TOKEN: "" })).toThrow("MENTATLAB_RUN_TOKEN is required");
    expect(() => loadSidecarConfig({ ...minimal, MENTATLAB_ATTEMPT: "zero" })).toThrow(/MENTATLAB_ATTEMPT must be an integer/);
    expect(() => loadSidecarConfig({ ...minimal, MENTATLAB_INPUTS_JSON: "{" })).toThrow(/MENTATLAB_INPUTS_JSON is not valid JSON/);
    expect(() => loadSidecarConfig({ ...minimal, MENTATLAB_INPUTS_JSON: '{"a": {"nope": 1}}' })).toThrow(/MENTATLAB_INPUTS_JSON.a/);
    expect(() => loadSidecarConfig({ ...minimal, MENTATLAB_OUTPUT_PINS_JSON: '{"a": "picture"}' })).toThrow(/MENTATLAB_OUTPUT_PINS_JSON.a must be one of/);
  });
});
