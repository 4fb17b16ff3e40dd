import { create, toJson } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { MediaRefSchema, PinType, PinValueSchema, StreamRefSchema } from "../gen/mentatlab/v1/common_pb.js";
import { plainValue } from "../agent-contract/plain-contract.js";
import { loadSidecarConfig } from "./config.js";
import { parsePlainInvocation, plainResult, withPlainInvocation } from "./plain-invocation.js";

const ref = create(MediaRefSchema, { id: "obj-1", workspace: "ws", sizeBytes: 42n, mimeType: "image/png", sha256: "a".repeat(64) });
const stream = create(StreamRefSchema, { streamId: "s-1", workspace: "ws", payloadType: PinType.AUDIO, mimeType: "audio/wav" });

describe("plain invocation", () => {
  it("takes inputs, params and output streams from stdin unless the environment set them", () => {
    const invocation = parsePlainInvocation(
      JSON.stringify({
        spec: { agent_id: "org.example.a", agent_version: "1.0.0", params: { size: 3 } },
        context: {
          run_id: "r",
          node_id: "n",
          workspace: "ws",
          inputs: { image: plainValue(create(PinValueSchema, { value: { case: "media", value: ref } })) },
          output_streams: { audio: toJson(StreamRefSchema, stream) },
        },
      }),
    );
    const config = withPlainInvocation(loadSidecarConfig({ MENTATLAB_RUN_ID: "r", MENTATLAB_NODE_ID: "n", MENTATLAB_RUN_TOKEN: "t" }), invocation);
    expect(config.inputs.get("image")?.value.case).toBe("media");
    expect(config.params).toEqual({ size: 3 });
    expect(config.outputStreams.get("audio")?.streamId).toBe("s-1");
    expect([config.workspace, config.agentId, config.agentVersion]).toEqual(["ws", "org.example.a", "1.0.0"]);

    const fromEnv = withPlainInvocation(
      loadSidecarConfig({ MENTATLAB_RUN_ID: "r", MENTATLAB_NODE_ID: "n", MENTATLAB_RUN_TOKEN: "t", MENTATLAB_PARAMS_JSON: '{"size": 9}' }),
      invocation,
    );
    expect(fromEnv.params).toEqual({ size: 9 });
  });

  it("writes outputs back in the contract's result shape", () => {
    expect(
      plainResult({
        thumb: create(PinValueSchema, { value: { case: "media", value: ref } }),
        note: create(PinValueSchema, { value: { case: "text", value: "ok" } }),
      }),
    ).toEqual({
      result: { thumb: toJson(MediaRefSchema, ref), note: "ok" },
    });
  });

  it("says when stdin is not the contract's JSON", () => {
    expect(() => parsePlainInvocation("{nope")).toThrow(/stdin is not the plain contract's/);
  });
});
