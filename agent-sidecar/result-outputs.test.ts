import { describe, expect, it } from "vitest";
import { PinType } from "../gen/mentatlab/v1/common_pb.js";
import { pinFor } from "./result-outputs.js";

describe("pinFor", () => {
  const declared = new Map([
    ["thumbnail", PinType.IMAGE],
    ["info", PinType.JSON],
  ]);

  it("uses the declared pin type", () => {
    expect(pinFor("thumbnail", { path: "t.png" }, declared).type).toBe(PinType.IMAGE);
  });

  it("names the declared pins when the result has another", () => {
    expect(() => pinFor("extra", 1, declared)).toThrow('"extra" is not an output pin (outputs: thumbnail, info)');
  });

  it("infers file, text and JSON when no pins are declared", () => {
    const none = new Map<string, PinType>();
    expect(pinFor("a", { path: "x.wav" }, none).type).toBe(PinType.BINARY);
    expect(pinFor("b", "hello", none).type).toBe(PinType.TEXT);
    expect(pinFor("c", { n: 1 }, none).type).toBe(PinType.JSON);
  });
});
