import { describe, expect, it } from "vitest";
import { PinType } from "../gen/mentatlab/v1/common_pb.js";
import { isMediaPin, pinTypeName, pinTypeNames } from "./pins.js";

describe("pin names", () => {
  it("name every declarable pin type and read back to it", () => {
    for (const [name, type] of pinTypeNames) expect(pinTypeName(type)).toBe(name);
    expect([...pinTypeNames.keys()]).toEqual(["text", "json", "binary", "image", "audio", "video", "stream"]);
  });

  it('call PIN_TYPE_UNSPECIFIED "unspecified", a name no manifest can declare', () => {
    expect(pinTypeName(PinType.UNSPECIFIED)).toBe("unspecified");
    expect(pinTypeNames.has("unspecified")).toBe(false);
  });
});

describe("isMediaPin", () => {
  it("holds for image, audio and video only: binary and stream pins carry no media limits", () => {
    const media = [...pinTypeNames].filter(([, type]) => isMediaPin(type)).map(([name]) => name);
    expect(media).toEqual(["image", "audio", "video"]);
    expect(isMediaPin(undefined)).toBe(false);
    expect(isMediaPin(PinType.UNSPECIFIED)).toBe(false);
  });
});
