import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { envelope } from "../server/fast-path/index.js";
import { EnvelopeSplitter } from "./envelope-splitter.js";

const messages = [new Uint8Array([1, 2, 3]), new Uint8Array(0), new Uint8Array(300).fill(7)];
const stream = Buffer.concat(messages.map(envelope));

describe("EnvelopeSplitter", () => {
  it("yields the same envelopes however the bytes are chunked", () => {
    for (const size of [1, 2, 5, 7, 64, stream.byteLength]) {
      const splitter = new EnvelopeSplitter(1024);
      const out: Uint8Array[] = [];
      for (let at = 0; at < stream.byteLength; at += size) {
        out.push(...splitter.push(stream.subarray(at, at + size)).map((e) => e.bytes));
      }
      expect(out.map((bytes) => Buffer.from(bytes))).toEqual(messages.map((m) => Buffer.from(envelope(m))));
      expect(splitter.midMessage).toBe(false);
    }
  });

  it("reports flags and a message cut short", () => {
    const splitter = new EnvelopeSplitter(1024);
    const flagged = envelope(new Uint8Array([9]));
    flagged[0] = 2;
    expect(splitter.push(flagged).map((e) => e.flags)).toEqual([2]);
    splitter.push(envelope(new Uint8Array(10)).subarray(0, 8));
    expect(splitter.midMessage).toBe(true);
  });

  it("refuses a message over readMaxBytes before its bytes arrive", () => {
    const splitter = new EnvelopeSplitter(10);
    const error = (() => {
      try {
        splitter.push(envelope(new Uint8Array(11)).subarray(0, 5));
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.ResourceExhausted);
  });
});
