import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { canonicalMimeType, looksLikeText, resolveMimeType } from "./content-type.js";

const png = await sharp({ create: { width: 4, height: 3, channels: 3, background: "#f00" } })
  .png()
  .toBuffer();

async function refusal(promise: Promise<unknown>): Promise<ConnectError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConnectError);
  return err as ConnectError;
}

describe("resolveMimeType", () => {
  it("trusts magic bytes over an empty or generic declaration", async () => {
    expect(await resolveMimeType(png, "", true)).toBe("image/png");
    expect(await resolveMimeType(png, "application/octet-stream", true)).toBe("image/png");
    expect(await resolveMimeType(png, "IMAGE/PNG; q=1", true)).toBe("image/png");
  });

  it("refuses a declared type that disagrees with the bytes, naming both", async () => {
    const err = await refusal(resolveMimeType(png, "image/jpeg", true));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.rawMessage).toContain('"image/jpeg"');
    expect(err.rawMessage).toContain('"image/png"');
  });

  it("treats valid UTF-8 as text and keeps a declared text-like type", async () => {
    const json = Buffer.from('{"a": "ünïcødé"}');
    expect(await resolveMimeType(json, "", true)).toBe("text/plain");
    expect(await resolveMimeType(json, "application/json", true)).toBe("application/json");
    expect(await resolveMimeType(json, "text/markdown", true)).toBe("text/markdown");
    expect((await refusal(resolveMimeType(json, "image/png", true))).rawMessage).toContain('"text/plain"');
  });

  it("keeps a declared application type for unrecognised binary, refuses media types", async () => {
    const noise = Buffer.from([0, 1, 2, 3, 250, 251, 0, 7]);
    expect(await resolveMimeType(noise, "", true)).toBe("application/octet-stream");
    expect(await resolveMimeType(noise, "application/x-custom", true)).toBe("application/x-custom");
    expect((await refusal(resolveMimeType(noise, "audio/wav", true))).code).toBe(Code.InvalidArgument);
  });
});

describe("looksLikeText", () => {
  it("accepts a multi-byte character cut at the end of an incomplete head only", () => {
    const cut = Buffer.from("héllo").subarray(0, 2);
    expect(looksLikeText(cut, false)).toBe(true);
    expect(looksLikeText(cut, true)).toBe(false);
    expect(looksLikeText(Buffer.from("a\u0000b"), true)).toBe(false);
  });
});

describe("canonicalMimeType", () => {
  it("maps aliases to one spelling", () => {
    expect(canonicalMimeType("audio/x-wav")).toBe("audio/wav");
    expect(canonicalMimeType("image/jpg")).toBe("image/jpeg");
  });
});
