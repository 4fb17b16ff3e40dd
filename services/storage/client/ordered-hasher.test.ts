import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { OrderedHasher, type UploadSource } from "./ordered-hasher.js";

const bytes = Uint8Array.from({ length: 3 * 1024 * 1024 + 17 }, (_, i) => (i * 7 + (i >> 9)) & 0xff);
const expected = createHash("sha256").update(bytes).digest("hex");

function hasherOver(data: Uint8Array): { hasher: OrderedHasher; reads: Array<[number, number]> } {
  const reads: Array<[number, number]> = [];
  const source: UploadSource = {
    size: data.byteLength,
    read: async (offset, length) => {
      reads.push([offset, length]);
      return data.slice(offset, offset + length);
    },
  };
  const hash = createHash("sha256");
  return { hasher: new OrderedHasher(source, { update: (d) => hash.update(d), digest: () => hash.digest("hex") }), reads };
}

describe("OrderedHasher", () => {
  it("hashes chunks fed in order without reading the source", async () => {
    const { hasher, reads } = hasherOver(bytes);
    for (let offset = 0; offset < bytes.byteLength; offset += 1_000_000) await hasher.feed(offset, bytes.subarray(offset, offset + 1_000_000));
    await hasher.feedUpTo(bytes.byteLength);
    expect(hasher.digest()).toBe(expected);
    expect(reads).toEqual([]);
  });

  it("hashes re-sent bytes once and reads skipped ranges from the source", async () => {
    const { hasher, reads } = hasherOver(bytes);
    await hasher.feed(0, bytes.subarray(0, 1000));
    await hasher.feed(500, bytes.subarray(500, 1500));
    await hasher.feed(2_500_000, bytes.subarray(2_500_000, 2_600_000));
    await hasher.feedUpTo(bytes.byteLength);
    expect(hasher.digest()).toBe(expected);
    const MiB = 1024 * 1024;
    expect(reads).toEqual([
      [1500, MiB],
      [1500 + MiB, MiB],
      [1500 + 2 * MiB, 2_500_000 - 1500 - 2 * MiB],
      [2_600_000, bytes.byteLength - 2_600_000],
    ]);
  });

  it("hashes an upload the server had entirely before this one began", async () => {
    const { hasher } = hasherOver(bytes);
    await hasher.feedUpTo(bytes.byteLength);
    expect(hasher.digest()).toBe(expected);
  });
});
