import { describe, expect, it } from "vitest";
import { rechunk } from "./chunks.js";

async function* pieces(...sizes: number[]): AsyncGenerator<Uint8Array> {
  let next = 0;
  for (const size of sizes) yield Uint8Array.from({ length: size }, () => next++ & 0xff);
}

async function collect(source: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const chunk of source) out.push(chunk);
  return out;
}

describe("rechunk", () => {
  it("cuts uneven pieces into exact chunks and keeps every byte in order", async () => {
    const chunks = await collect(rechunk(pieces(5, 17, 1, 30), 8));
    expect(chunks.map((c) => c.length)).toEqual([8, 8, 8, 8, 8, 8, 5]);
    const joined = Buffer.concat(chunks);
    expect([...joined]).toEqual(Array.from({ length: 53 }, (_, i) => i));
  });

  it("yields nothing for an empty source and refuses a bad size", async () => {
    expect(await collect(rechunk(pieces(), 4))).toEqual([]);
    await expect(collect(rechunk(pieces(1), 0))).rejects.toThrow(RangeError);
  });
});
