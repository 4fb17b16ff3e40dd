import { create, toJson } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { LogLevel, MediaRefSchema, PinType, PinValueSchema, StreamRefSchema } from "../gen/mentatlab/v1/common_pb.js";
import { AgentManifestSchema, PinSchema } from "../gen/mentatlab/v1/registry_pb.js";
import { outputFromPlain, parsePlainLine, pinValueFromPlain, plainInput, plainValue } from "./plain-contract.js";
import { jsonOf, jsonPinValue, textPinValue } from "./pin-values.js";

describe("plain contract: stdout lines", () => {
  it("reads progress with percent, message and eta, clamping percent to 0..100", () => {
    const line = parsePlainLine(
      JSON.stringify({ type: "progress", data: { percent: 140, message: "encoding", eta_seconds: 3 }, ts: "2025-01-01T00:00:00Z", correlation_id: "c9" }),
    );
    expect(line?.kind).toBe("event");
    const event = line?.kind === "event" ? line.event : undefined;
    expect(event?.event.case === "progress" && [event.event.value.percent, event.event.value.message, event.event.value.etaSeconds]).toEqual([
      100,
      "encoding",
      3,
    ]);
    expect([event?.correlationId, event?.time?.seconds]).toEqual(["c9", 1735689600n]);
  });

  it("reads logs with levels, checkpoints, metrics and heartbeats", () => {
    const kinds = [
      { type: "log", level: "warning", message: "careful" },
      { type: "checkpoint", message: "stage-1", data: { offset: 5 } },
      { type: "metric", data: { name: "frames", value: 12, labels: { codec: "h264" } } },
      { type: "heartbeat" },
    ].map((e) => parsePlainLine(JSON.stringify(e)));
    const events = kinds.map((l) => (l?.kind === "event" ? l.event.event : undefined));
    expect(events[0]?.case === "log" && [events[0].value.level, events[0].value.message]).toEqual([LogLevel.WARN, "careful"]);
    expect(events[1]?.case === "checkpoint" && [events[1].value.name, events[1].value.data]).toEqual(["stage-1", { offset: 5 }]);
    expect(events[2]?.case === "metric" && [events[2].value.name, events[2].value.value, events[2].value.labels]).toEqual(["frames", 12, { codec: "h264" }]);
    expect(events[3]?.case).toBe("heartbeat");
  });

  it("keeps non-JSON output as info logs, reports errors, outputs and the final result", () => {
    const plain = parsePlainLine("loading model...");
    expect(plain?.kind === "event" && plain.event.event.case === "log" && plain.event.event.value.message).toBe("loading model...");
    expect(parsePlainLine("   ")).toBeUndefined();
    expect(parsePlainLine(JSON.stringify({ type: "error", message: "bad input" }))).toMatchObject({ kind: "error", message: "bad input" });
    expect(parsePlainLine(JSON.stringify({ type: "output", data: { pin: "caption", value: "a cat" } }))).toMatchObject({
      kind: "output",
      pin: "caption",
      raw: "a cat",
    });
    expect(parsePlainLine(JSON.stringify({ result: { caption: "a cat" } }))).toEqual({ kind: "result", result: { caption: "a cat" } });
  });
});

describe("plain contract: values", () => {
  const pin = (type: PinType) => create(PinSchema, { name: "out", type });

  it("converts result values by the output pin's type", () => {
    expect(outputFromPlain(pin(PinType.TEXT), "hi")).toEqual({ value: textPinValue("hi") });
    expect(outputFromPlain(pin(PinType.TEXT), 5)).toMatchObject({ error: expect.stringContaining("must be a string") });
    const json = outputFromPlain(pin(PinType.JSON), { a: [1] });
    expect("value" in json && json.value.value.case === "json" && jsonOf(json.value.value.value)).toEqual({ a: [1] });
    const bytes = outputFromPlain(pin(PinType.BINARY), { base64: Buffer.from("abc").toString("base64") });
    expect("value" in bytes && Buffer.from(bytes.value.value.value as Uint8Array).toString()).toBe("abc");
    expect(outputFromPlain(pin(PinType.IMAGE), { path: "/tmp/x.png", mime_type: "image/png" })).toEqual({
      file: { path: "/tmp/x.png", mimeType: "image/png" },
    });
    const ref = outputFromPlain(pin(PinType.AUDIO), { id: "obj1", workspace: "w", sizeBytes: "10", mimeType: "audio/wav" });
    expect("value" in ref && ref.value.value.case === "media" && ref.value.value.value.sizeBytes).toBe(10n);
    expect(outputFromPlain(pin(PinType.VIDEO), "clip.mp4")).toMatchObject({ error: expect.stringContaining("MediaRef") });
  });

  it("hands the agent its spec and context with inputs in plain JSON", () => {
    const agent = create(AgentManifestSchema, { id: "org.x.y", version: "1.0.0" });
    const media = create(PinValueSchema, { value: { case: "media", value: create(MediaRefSchema, { id: "obj", sizeBytes: 3n, mimeType: "image/png" }) } });
    const input = plainInput({
      runId: "run_1",
      nodeId: "n",
      attempt: 2,
      workspace: "w",
      agent,
      params: { k: 1 },
      inputs: {
        t: textPinValue("x"),
        j: jsonPinValue({ a: 1 }),
        b: create(PinValueSchema, { value: { case: "inlineBytes", value: Buffer.from("hi") } }),
        m: media,
      },
      outputStreams: {},
    });
    expect(input.spec).toEqual({ agent_id: "org.x.y", agent_version: "1.0.0", params: { k: 1 } });
    expect(input.context).toEqual({
      run_id: "run_1",
      node_id: "n",
      attempt: 2,
      workspace: "w",
      output_streams: {},
      inputs: { t: "x", j: { a: 1 }, b: { base64: "aGk=" }, m: { id: "obj", sizeBytes: "3", mimeType: "image/png" } },
    });
  });
});

describe("plain contract: input values", () => {
  const ref = create(MediaRefSchema, { id: "obj-1", workspace: "ws", sizeBytes: 42n, mimeType: "image/png", sha256: "a".repeat(64) });
  const stream = create(StreamRefSchema, { streamId: "s-1", workspace: "ws", payloadType: PinType.AUDIO, mimeType: "audio/wav" });

  it("reads back every input encoding plainValue writes", () => {
    const values = [
      create(PinValueSchema, { value: { case: "text", value: "hi" } }),
      create(PinValueSchema, { value: { case: "inlineBytes", value: new Uint8Array([1, 2, 3]) } }),
      create(PinValueSchema, { value: { case: "media", value: ref } }),
      create(PinValueSchema, { value: { case: "stream", value: stream } }),
      create(PinValueSchema, { value: { case: "json", value: { kind: { case: "numberValue", value: 7 } } } }),
    ];
    for (const value of values) expect(toJson(PinValueSchema, pinValueFromPlain(plainValue(value)))).toEqual(toJson(PinValueSchema, value));
  });
});
