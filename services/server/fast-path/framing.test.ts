import { create, equals, fromBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { DownloadResponseSchema, UploadRequestSchema } from "../../../gen/mentatlab/v1/storage_pb.js";
import { envelopeSegments } from "./framing.js";

/** The message bytes of an envelope written as `segments`, after checking its header. */
function unframe(segments: Uint8Array[]): Uint8Array {
  const framed = Buffer.concat(segments);
  expect(framed[0]).toBe(0);
  expect(framed.readUInt32BE(1)).toBe(framed.byteLength - 5);
  return framed.subarray(5);
}

const bulk = new Uint8Array(100_000).map((_, i) => i % 251);

describe("envelopeSegments", () => {
  it("writes a small message as one envelope", () => {
    const message = create(DownloadResponseSchema, { part: { case: "chunk", value: { offset: 7n, data: new Uint8Array([1, 2, 3]) } } });
    const segments = envelopeSegments(DownloadResponseSchema, message);
    expect(segments).toHaveLength(1);
    expect(equals(DownloadResponseSchema, fromBinary(DownloadResponseSchema, unframe(segments)), message)).toBe(true);
  });

  it("hands bulk bytes one message deep over as the handler's own buffer, decoding to the same message", () => {
    const message = create(DownloadResponseSchema, { part: { case: "chunk", value: { offset: 123_456_789n, data: bulk } } });
    const segments = envelopeSegments(DownloadResponseSchema, message);
    expect(segments).toHaveLength(2);
    expect(segments[1]).toBe(bulk);
    expect(equals(DownloadResponseSchema, fromBinary(DownloadResponseSchema, unframe(segments)), message)).toBe(true);
    // The message is left as it was given.
    expect(message.part.case === "chunk" && message.part.value.data).toBe(bulk);
  });

  it("hands top-level bulk bytes in a oneof over as they are", () => {
    const message = create(UploadRequestSchema, { part: { case: "chunk", value: bulk } });
    const segments = envelopeSegments(UploadRequestSchema, message);
    expect(segments[segments.length - 1]).toBe(bulk);
    expect(equals(UploadRequestSchema, fromBinary(UploadRequestSchema, unframe(segments)), message)).toBe(true);
    expect(message.part.value).toBe(bulk);
  });
});
