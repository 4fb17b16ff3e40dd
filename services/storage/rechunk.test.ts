import { describe, expect, it } from "vitest";
import { rechunk } from "./rechunk.js";

async function lengths(pieces: number[], size: number): Promise<{ sizes: number[]; bytes: Buffer }> {
  let next = 0;
  const source = pieces.map((n) => Buffer.from(Array.from({ length: n }, () => next++ % 256)));
  const out: Uint8Array[] = [];
  for await (const chunk of rechunk(source, size)) out.push(chunk);
  return { sizes: out.map((c) => c.byteLength), bytes: Buffer.concat(out) };
}

describe("rechunk", () => {
  it("splits large pieces and joins small ones into exact sizes, keeping byte order", async () => {
    const { sizes, bytes } = await lengths([10, 3, 3, 3, 25, 1], 8);
    expect(sizes).toEqual([8, 8, 8, 8, 8, 5]);
    expect([...bytes]).toEqual(Array.from({ length: 45 }, (_, i) => i));
  });

  it("yields nothing for an empty stream", async () => {
    expect((await lengths([], 8)).sizes).toEqual([]);
  });

  it("pulls the source lazily", async () => {
    let pulled = 0;
    async function* source(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 100; i++) {
        pulled += 1;
        yield new Uint8Array(8);
      }
    }
    const it = rechunk(source(), 8);
    await it.next();
    await it.next();
    expect(pulled).toBe(2);
    await it.return(undefined);
  });
});
