import { create } from "@bufbuild/protobuf";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BucketClass,
  MediaConstraintsSchema,
  MediaMetadataSchema,
  type MediaRef,
  PinType,
  PinValueSchema,
  StreamRefSchema,
} from "../../gen/mentatlab/v1/common_pb.js";
import { PinSchema } from "../../gen/mentatlab/v1/registry_pb.js";
import { RunTokenSigner } from "../shared/run-token.js";
import { EdgeError, type EdgeContext, processEdge } from "./edge-processor.js";
import { type MediaStore, storageMediaStore } from "./media-store.js";
import { jsonOf } from "../../agent-contract/pin-values.js";
import { RealServices } from "./testing.js";

const runTokens = new RunTokenSigner("edge-test-secret-0123456789");
const token = runTokens.mint({ runId: "run_x", nodeId: "n", attempt: 1, user: "alice", workspace: "ws-edge" }, 600);
let services: RealServices;
let media: MediaStore;
let png: MediaRef;
beforeAll(async () => {
  services = await RealServices.start(runTokens);
  media = storageMediaStore(services.storage);
  const bytes = await sharp({ create: { width: 40, height: 30, channels: 3, background: "#08f" } })
    .png()
    .toBuffer();
  png = await media.upload(
    (async function* () {
      yield bytes;
    })(),
    { filename: "a.png", mimeType: "image/png", sizeBytes: BigInt(bytes.length), bucketClass: BucketClass.MEDIA },
    token,
  );
});
afterAll(async () => {
  await services.close();
});

const ctx = (overrides: Partial<EdgeContext> = {}): EdgeContext => ({ workspace: "ws-edge", runToken: token, inlineThresholdBytes: 1024, media, ...overrides });
const pin = (type: PinType, media?: Parameters<typeof create<typeof MediaConstraintsSchema>>[1]) =>
  create(PinSchema, { name: "in", type, ...(media ? { media: create(MediaConstraintsSchema, media) } : {}) });
const value = (v: Parameters<typeof create<typeof PinValueSchema>>[1]) => create(PinValueSchema, v);

describe("edge processors", () => {
  it("passes text and json inline and turns text into a JSON string for json pins", async () => {
    const t = value({ value: { case: "text", value: "hello" } });
    expect(await processEdge(t, pin(PinType.TEXT), ctx())).toBe(t);
    const asJson = await processEdge(t, pin(PinType.JSON), ctx());
    expect(asJson.value.case === "json" && jsonOf(asJson.value.value)).toBe("hello");
    await expect(processEdge(t, pin(PinType.IMAGE), ctx())).rejects.toThrow(EdgeError);
  });

  it("keeps small binary inline and offloads larger binary to storage as a temp MediaRef", async () => {
    const small = value({ value: { case: "inlineBytes", value: new Uint8Array(1024) } });
    expect(await processEdge(small, pin(PinType.BINARY), ctx())).toBe(small);
    const bytes = new Uint8Array(200_000).map((_, i) => i % 251);
    const offloaded = await processEdge(value({ value: { case: "inlineBytes", value: bytes } }), pin(PinType.BINARY), ctx());
    expect(offloaded.value.case).toBe("media");
    const ref = offloaded.value.value as MediaRef;
    expect([ref.sizeBytes, ref.workspace, ref.bucketClass]).toEqual([200_000n, "ws-edge", BucketClass.TEMP]);
    await expect(processEdge(value({ value: { case: "inlineBytes", value: bytes } }), pin(PinType.BINARY), ctx({ media: undefined }))).rejects.toThrow(
      /no storage/,
    );
  });

  it("hands media on as refs re-read from storage and checks them against the pin's MIME types and limits", async () => {
    // A ref whose metadata lies: storage's own record must win.
    const forged = value({ value: { case: "media", value: { ...png, metadata: create(MediaMetadataSchema, { width: 1, height: 1 }) } } });
    const ok = await processEdge(forged, pin(PinType.IMAGE, { acceptedMimeTypes: ["image/*"], maxWidth: 100 }), ctx());
    expect(ok.value.case === "media" && ok.value.value.metadata?.width).toBe(40);
    await expect(processEdge(forged, pin(PinType.IMAGE, { acceptedMimeTypes: ["image/jpeg"] }), ctx())).rejects.toThrow(
      "type image/png is not one of image/jpeg",
    );
    await expect(processEdge(forged, pin(PinType.IMAGE, { acceptedMimeTypes: ["image/png"], maxWidth: 32, maxSizeBytes: 10n }), ctx())).rejects.toThrow(
      /size \d+ bytes exceeds 10 bytes; width 40 px exceeds 32 px/,
    );
    await expect(processEdge(forged, pin(PinType.AUDIO, { acceptedMimeTypes: [] }), ctx())).rejects.toThrow("type image/png is not one of audio/*");
  });

  it("refuses refs of another workspace and refs storage does not know", async () => {
    const foreign = value({ value: { case: "media", value: { ...png, workspace: "ws-other" } } });
    await expect(processEdge(foreign, pin(PinType.IMAGE), ctx())).rejects.toThrow("belongs to another workspace");
    const missing = value({ value: { case: "media", value: { ...png, id: "no-such-object" } } });
    await expect(processEdge(missing, pin(PinType.IMAGE), ctx())).rejects.toThrow(/cannot be read from storage/);
    const stream = value({ value: { case: "stream", value: create(StreamRefSchema, { streamId: "s1", workspace: "ws-other", payloadType: PinType.TEXT }) } });
    await expect(processEdge(stream, pin(PinType.STREAM), ctx())).rejects.toThrow("belongs to another workspace");
  });
});
