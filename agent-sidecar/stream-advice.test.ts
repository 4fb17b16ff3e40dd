import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { AdaptOutputBitrateSchema, type AdaptOutputBitrate } from "../gen/mentatlab/v1/sidecar_pb.js";
import { StreamAdvice } from "./stream-advice.js";

const advice = (bits: number): AdaptOutputBitrate =>
  create(AdaptOutputBitrateSchema, { measuredBitsPerSecond: BigInt(bits), suggestedBitsPerSecond: BigInt(bits / 2), reason: `${bits}` });

async function collect(source: AsyncIterable<AdaptOutputBitrate>): Promise<number[]> {
  const seen: number[] = [];
  for await (const item of source) seen.push(Number(item.measuredBitsPerSecond));
  return seen;
}

describe("StreamAdvice", () => {
  it("starts a watcher with the latest advice, then each newer one, until the stream ends", async () => {
    const feed = new StreamAdvice();
    feed.publish(advice(100));
    feed.publish(advice(200));
    const watched = collect(feed.watch(new AbortController().signal));
    await new Promise((resolve) => setImmediate(resolve));
    feed.publish(advice(300));
    await new Promise((resolve) => setImmediate(resolve));
    feed.end();
    expect(await watched).toEqual([200, 300]);
  });

  it("gives a watcher arriving after the end the last advice and finishes", async () => {
    const feed = new StreamAdvice();
    feed.end();
    expect(await collect(feed.watch(new AbortController().signal))).toEqual([]);
    const advised = new StreamAdvice();
    advised.publish(advice(100));
    advised.end();
    expect(await collect(advised.watch(new AbortController().signal))).toEqual([100]);
  });

  it("throws the abort reason to a waiting watcher instead of ending quietly", async () => {
    const feed = new StreamAdvice();
    const stop = new AbortController();
    const watched = collect(feed.watch(stop.signal));
    await new Promise((resolve) => setImmediate(resolve));
    stop.abort(new Error("agent went away"));
    await expect(watched).rejects.toThrow("agent went away");
  });
});
