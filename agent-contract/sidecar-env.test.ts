import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { PinType, PinValueSchema, StreamRefSchema } from "../gen/mentatlab/v1/common_pb.js";
import { readSidecarEnv, sidecarEnv, type SidecarTask } from "./sidecar-env.js";

const task: SidecarTask = {
  runId: "r1",
  nodeId: "tts",
  attempt: 2,
  workspace: "ws",
  agentId: "org.example.tts",
  agentVersion: "1.2.3",
  gatewayUrl: "http://127.0.0.1:9000",
  runToken: "mlrun_abc.def",
  sharedDir: "/tmp/shared-r1-tts",
  inputs: { text: create(PinValueSchema, { value: { case: "text", value: "hi" } }) },
  params: { voice: "en" },
  outputPins: { audio: PinType.STREAM, speech: PinType.AUDIO },
  outputStreams: { audio: create(StreamRefSchema, { streamId: "s1", workspace: "ws", payloadType: PinType.AUDIO, mimeType: "audio/wav" }) },
};

describe("sidecarEnv and readSidecarEnv", () => {
  it("read back the task the environment was made from", () => {
    const read = readSidecarEnv(sidecarEnv(task));
    expect(read).toMatchObject({
      runId: "r1",
      nodeId: "tts",
      attempt: 2,
      workspace: "ws",
      agentId: "org.example.tts",
      agentVersion: "1.2.3",
      gatewayUrl: "http://127.0.0.1:9000",
      runToken: "mlrun_abc.def",
      sharedDir: "/tmp/shared-r1-tts",
      params: { voice: "en" },
    });
    expect(read.listen).toBe("/tmp/shared-r1-tts/sidecar.sock");
    expect(read.inputs.get("text")?.value).toEqual({ case: "text", value: "hi" });
    expect([...read.outputPins]).toEqual([
      ["audio", PinType.STREAM],
      ["speech", PinType.AUDIO],
    ]);
    expect(read.outputStreams.get("audio")).toEqual(task.outputStreams["audio"]);
  });

  it("write an output pin of unspecified type as binary, which the reader accepts", () => {
    const env = sidecarEnv({ ...task, outputPins: { blob: PinType.UNSPECIFIED }, listen: "127.0.0.1:0" });
    expect(JSON.parse(env["MENTATLAB_OUTPUT_PINS_JSON"] ?? "")).toEqual({ blob: "binary" });
    expect(readSidecarEnv(env).outputPins.get("blob")).toBe(PinType.BINARY);
    expect(readSidecarEnv(env).listen).toBe("127.0.0.1:0");
  });

  it("reject an attempt that is not a positive integer, naming the variable", () => {
    const env = sidecarEnv(task);
    expect(() => readSidecarEnv({ ...env, MENTATLAB_ATTEMPT: "0" })).toThrow('MENTATLAB_ATTEMPT must be an integer >= 1, got "0"');
    expect(() => readSidecarEnv({ ...env, MENTATLAB_PARAMS_JSON: "[1]" })).toThrow("MENTATLAB_PARAMS_JSON must be a JSON object");
  });
});
