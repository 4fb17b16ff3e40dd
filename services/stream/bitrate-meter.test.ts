import { describe, expect, it } from "vitest";
import { BitrateMeter } from "./bitrate-meter.js";

describe("BitrateMeter", () => {
  it("gives no verdict before a full window has been observed", () => {
    const meter = new BitrateMeter(1_000_000, 1_000);
    expect(meter.record(100, 0)).toBeUndefined();
    expect(meter.record(100, 999)).toBeUndefined();
  });

  it("advises a producer under the threshold once per window, with headroom below what it achieves", () => {
    const meter = new BitrateMeter(1_000_000, 1_000);
    let advice;
    // 10 KiB every 100 ms is about 800 kbit/s.
    for (let t = 0; t <= 1_000 && !advice; t += 100) advice = meter.record(10_240, t);
    expect(advice?.measuredBitsPerSecond).toBe(819_200n);
    expect(advice?.suggestedBitsPerSecond).toBe(655_360n);
    expect(advice?.reason).toContain("819 kbit/s");
    expect(meter.record(10_240, 1_100)).toBeUndefined();
    expect(meter.record(10_240, 2_000)).toBeDefined();
  });

  it("leaves a producer above the threshold alone, judging only the latest window", () => {
    const meter = new BitrateMeter(1_000_000, 1_000);
    // A slow start followed by 200 KiB per 100 ms (16 Mbit/s): the old samples drop out of the window.
    meter.record(100, 0);
    for (let t = 100; t <= 3_000; t += 100) expect(meter.record(204_800, t)).toBeUndefined();
  });
});
