import { createHash, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Sha256 } from "./sha256.js";

describe("Sha256", () => {
  it("matches the FIPS 180-4 examples", () => {
    expect(new Sha256().digest()).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect(new Sha256().update(new TextEncoder().encode("abc")).digest()).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });

  it("matches node:crypto for every length around the block and padding boundaries, fed in uneven pieces", () => {
    const data = randomBytes(300);
    for (let length = 0; length <= data.length; length++) {
      const input = data.subarray(0, length);
      const hasher = new Sha256();
      for (let offset = 0, step = 1; offset < length; offset += step, step = (step * 7) % 67 || 1) hasher.update(input.subarray(offset, offset + step));
      expect(hasher.digest(), `length ${length}`).toBe(createHash("sha256").update(input).digest("hex"));
    }
  });

  it("hashes megabytes in chunks as node:crypto does", () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const hasher = new Sha256();
    for (let offset = 0; offset < data.length; offset += 1024 * 1024) hasher.update(data.subarray(offset, offset + 1024 * 1024));
    expect(hasher.digest()).toBe(createHash("sha256").update(data).digest("hex"));
  });
});
