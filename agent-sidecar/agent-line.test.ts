import { describe, expect, it } from "vitest";
import { LogLevel } from "../gen/mentatlab/v1/common_pb.js";
import { parseAgentLine } from "./agent-line.js";

describe("parseAgentLine", () => {
  it("reads the final result line", () => {
    expect(parseAgentLine('{"result": {"text": "hi"}}')).toEqual({ kind: "result", result: { text: "hi" } });
  });

  it("reads progress with percent, message and eta from data, clamping percent", () => {
    const line = parseAgentLine('{"type":"progress","data":{"percent":140,"message":"half","eta_seconds":3},"correlation_id":"c1","ts":1700000000}');
    expect(line?.kind).toBe("event");
    if (line?.kind !== "event") return;
    expect(line.event.correlationId).toBe("c1");
    expect(line.event.time?.seconds).toBe(1700000000n);
    expect(line.event.event).toMatchObject({ case: "progress", value: { percent: 100, message: "half", etaSeconds: 3 } });
  });

  it("maps log levels and keeps data", () => {
    const line = parseAgentLine('{"type":"log","level":"warning","message":"careful","data":{"k":1},"ts":"2026-01-01T00:00:00Z"}');
    if (line?.kind !== "event") throw new Error("expected an event");
    expect(line.event.event).toMatchObject({ case: "log", value: { level: LogLevel.WARN, message: "careful", data: { k: 1 } } });
    expect(line.event.time?.seconds).toBe(BigInt(Date.parse("2026-01-01T00:00:00Z") / 1000));
  });

  it("reads heartbeat, checkpoint and metric events", () => {
    const kinds = ['{"type":"heartbeat"}', '{"type":"checkpoint","message":"decoded","data":{"frame":3}}', '{"type":"metric","data":{"name":"frames","value":12,"labels":{"codec":"h264"}}}']
      .map((text) => parseAgentLine(text))
      .map((line) => (line?.kind === "event" ? line.event.event : undefined));
    expect(kinds[0]?.case).toBe("heartbeat");
    expect(kinds[1]).toMatchObject({ case: "checkpoint", value: { name: "decoded", data: { frame: 3 } } });
    expect(kinds[2]).toMatchObject({ case: "metric", value: { name: "frames", value: 12, labels: { codec: "h264" } } });
  });

  it("keeps plain text and unknown event types as logs, skips blank lines", () => {
    const text = parseAgentLine("loading model...");
    if (text?.kind !== "event") throw new Error("expected an event");
    expect(text.event.event).toMatchObject({ case: "log", value: { level: LogLevel.INFO, message: "loading model..." } });
    const unknown = parseAgentLine('{"type":"token","message":"x","data":{"n":1}}');
    if (unknown?.kind !== "event") throw new Error("expected an event");
    expect(unknown.event.event).toMatchObject({ case: "log", value: { data: { n: 1, type: "token" } } });
    expect(parseAgentLine("   ")).toBeUndefined();
  });
});
