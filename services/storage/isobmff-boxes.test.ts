import { describe, expect, it } from "vitest";
import { boxLayoutProblem } from "./isobmff-boxes.js";

function box(type: string, payload: number, size = 8 + payload): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(size);
  header.write(type, 4, "latin1");
  return Buffer.concat([header, Buffer.alloc(payload, 7)]);
}

function largeBox(type: string, payload: number): Buffer {
  const header = Buffer.alloc(16);
  header.writeUInt32BE(1);
  header.write(type, 4, "latin1");
  header.writeBigUInt64BE(BigInt(16 + payload), 8);
  return Buffer.concat([header, Buffer.alloc(payload)]);
}

/** The bytes in chunks of `size`, so headers straddle chunk boundaries. */
function* chunks(bytes: Buffer, size: number): Iterable<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

describe("boxLayoutProblem", () => {
  const whole = Buffer.concat([box("ftyp", 12), box("moov", 100), largeBox("mdat", 300)]);

  it.each([1, 3, 7, 64, 4096])("accepts boxes that tile the bytes, in %i-byte chunks", async (size) => {
    expect(await boxLayoutProblem(chunks(whole, size))).toBeUndefined();
  });

  it.each([1, 5, 4096])("reports the box a cut falls in, in %i-byte chunks", async (size) => {
    expect(await boxLayoutProblem(chunks(whole.subarray(0, whole.length - 1), size))).toBe(
      'the file is truncated: its "mdat" box at offset 128 declares 316 bytes, but only 315 are there',
    );
  });

  it("reports a file that ends inside a box header", async () => {
    expect(await boxLayoutProblem([whole.subarray(0, 20 + 4)])).toBe("the file ends inside the header of a box at offset 20");
  });

  it("reports a box smaller than its header", async () => {
    expect(await boxLayoutProblem([box("ftyp", 0, 4)])).toContain('"ftyp" box at offset 0 declares 4 bytes');
  });

  it("accepts a last box of size 0, which runs to the end of the file", async () => {
    expect(await boxLayoutProblem([box("ftyp", 12), box("mdat", 50, 0)])).toBeUndefined();
  });
});
