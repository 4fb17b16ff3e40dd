import { describe, expect, it } from "vitest";
import { PinType } from "../gen/mentatlab/v1/common_pb.js";
import { assignToPins } from "./result-outputs.js";

describe("assignToPins", () => {
  const pins = new Map([
    ["thumbnail", PinType.IMAGE],
    ["info", PinType.JSON],
    ["live", PinType.STREAM],
  ]);

  it("takes the keys that name output pins", () => {
    expect(assignToPins({ thumbnail: "t.png", info: { w: 1 }, extra: 1 }, pins)).toEqual({ thumbnail: "t.png", info: { w: 1 } });
  });

  it("gives a whole result to the only non-stream output pin", () => {
    const single = new Map([["summary", PinType.TEXT], ["live", PinType.STREAM]]);
    expect(assignToPins("done", single)).toEqual({ summary: "done" });
    expect(assignToPins({ words: 3 }, single)).toEqual({ summary: { words: 3 } });
  });

  it("uses the keys as pins, or `result`, when no pins are declared", () => {
    expect(assignToPins({ a: 1 }, new Map())).toEqual({ a: 1 });
    expect(assignToPins([1, 2], new Map())).toEqual({ result: [1, 2] });
  });

  it("says how to shape an ambiguous result", () => {
    expect(() => assignToPins("x", pins)).toThrow(/keyed by its output pins \(thumbnail, info\)/);
  });
});
