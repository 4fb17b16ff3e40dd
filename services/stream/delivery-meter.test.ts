import { describe, expect, it } from "vitest";
import type { AdaptBitrate } from "../../gen/mentatlab/v1/stream_pb.js";
import { DeliveryMeter, subscriberClass } from "./delivery-meter.js";
import { testPrincipal } from "../../test/support/in-memory.js";

// The meter on a simulated clock: a producer appends every 100 ms; subscribers receive what a link of
// a given rate lets through, oldest first, as a transport's flow control would.

const windowMs = 1_000;
const stream = { workspace: "ws", id: "st_1" };

/**
 * One subscriber behind a link of `linkBytesPerSecond`: it receives the produced chunks in order, as
 * fast as the link allows. `chunkBytes` is the producer: given the latest advice, what it sends next.
 */
function simulate(options: {
  readonly chunkBytes: (advice: AdaptBitrate | undefined) => number;
  readonly linkBytesPerSecond: number;
  readonly untilMs: number;
}): { t: number; given: AdaptBitrate }[] {
  const meter = new DeliveryMeter(windowMs);
  const subscriber = meter.subscriber(stream, "user slow", 0);
  const queue: { bytes: number; storedAt: number }[] = [];
  let budget = 0;
  const advice: { t: number; given: AdaptBitrate }[] = [];
  for (let t = 0; t <= options.untilMs; t += 100) {
    budget += (options.linkBytesPerSecond * 100) / 1000;
    while (queue.length > 0 && (queue[0]?.bytes ?? 0) <= budget) {
      const chunk = queue.shift();
      if (!chunk) break;
      budget -= chunk.bytes;
      subscriber.deliveredData(chunk.bytes, chunk.storedAt, t);
    }
    if (queue.length === 0) budget = Math.min(budget, options.linkBytesPerSecond / 10);
    const bytes = options.chunkBytes(advice.at(-1)?.given);
    const given = meter.produced(stream, bytes, t);
    if (given) advice.push({ t, given });
    queue.push({ bytes, storedAt: t });
  }
  return advice;
}

describe("DeliveryMeter", () => {
  it("advises nothing while every subscriber keeps up, or when nobody subscribes", () => {
    expect(simulate({ chunkBytes: () => 6_250, linkBytesPerSecond: 1_000_000, untilMs: 10_000 })).toEqual([]);
    const alone = new DeliveryMeter(windowMs);
    for (let t = 0; t < 10_000; t += 100) expect(alone.produced(stream, 6_250, t)).toBeUndefined();
  });

  it("names a subscriber that receives less than is produced, with its rate and headroom below it, once per window", () => {
    // 500 kbit/s produced; the link carries 16 KiB/s.
    const advice = simulate({ chunkBytes: () => 6_250, linkBytesPerSecond: 16 * 1024, untilMs: 5_000 });
    expect(advice.length).toBeGreaterThan(0);
    const first = advice[0]?.given;
    expect(first?.subscriber).toBe("user slow");
    // 16 KiB/s (131 kbit/s) carries 2 or 3 whole 6 250-byte chunks a second; the first span counts both ends.
    expect(Number(first?.measuredBitsPerSecond)).toBeGreaterThanOrEqual(100_000);
    expect(Number(first?.measuredBitsPerSecond)).toBeLessThanOrEqual(170_000);
    expect(Number(first?.producedBitsPerSecond)).toBeGreaterThanOrEqual(450_000);
    expect(Number(first?.producedBitsPerSecond)).toBeLessThanOrEqual(550_000);
    expect(first?.suggestedBitsPerSecond).toBe(((first?.measuredBitsPerSecond ?? 0n) * 8n) / 10n);
    expect(first?.reason).toMatch(/^subscriber user slow receives 1\d\d kbit\/s of the 5\d\d kbit\/s produced over the last [\d.]+ s and is [\d.]+ s behind/);
    const times = advice.map(({ t }) => t);
    for (let i = 1; i < times.length; i++) expect((times[i] ?? 0) - (times[i - 1] ?? 0)).toBeGreaterThanOrEqual(windowMs);
  });

  it("stops advising once the producer follows the advice, rather than spiralling down", () => {
    const link = 16 * 1024;
    // An encoder that follows the advice: bits per second to bytes per 100 ms chunk.
    const follows = (advice: AdaptBitrate | undefined) => (advice ? Math.floor(Number(advice.suggestedBitsPerSecond) / 80) : 6_250);
    const advice = simulate({ chunkBytes: follows, linkBytesPerSecond: link, untilMs: 30_000 });
    expect(advice.length).toBeGreaterThan(0);
    // Once the backlog has drained at the lower rate, no more advice: the last came in the first half.
    expect(Math.max(...advice.map(({ t }) => t))).toBeLessThan(15_000);
    expect(follows(advice.at(-1)?.given)).toBeGreaterThan((link / 10) * 0.5);
  });

  it("leaves a stalled subscriber to the lag bound: lowering the bitrate would not reach it", () => {
    expect(simulate({ chunkBytes: () => 6_250, linkBytesPerSecond: 0, untilMs: 5_000 })).toEqual([]);
  });

  it("names agents by node and run, users by id", () => {
    expect(subscriberClass(testPrincipal({ user: "bob" }))).toBe("user bob");
    expect(subscriberClass(testPrincipal({ user: "run:r1", run: { runId: "r1", nodeId: "reader", attempt: 1 } }))).toBe("agent reader of run r1");
  });
});
