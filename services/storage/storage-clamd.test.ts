import { randomBytes } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ClamdServer, EICAR, EICAR_SIGNATURE_NAME, makeTempDir, removeTempDir, startClamd } from "../../test/harness/index.js";
import { codeOf, keysUnder, type RuntimeUnderTest, startRuntime, uploadStream } from "./storage-service.conformance.js";

describe("StorageService with a real clamd", () => {
  let root: string;
  let clamd: ClamdServer;
  let sut: RuntimeUnderTest;
  beforeAll(async () => {
    root = makeTempDir("storage-clamd");
    clamd = await startClamd();
    sut = await startRuntime(
      { freshEnv: async () => ({ STORAGE_DIR: root }), dispose: async () => {} },
      { CLAMD_SOCKET: clamd.socketPath, CLAMD_TIMEOUT_MS: "5000" },
    );
  });
  afterAll(async () => {
    await sut?.close();
    await clamd?.stop();
    removeTempDir(root);
  });

  it("refuses EICAR and keeps nothing", async () => {
    const client = sut.client("mal", "ws-scan");
    const body = Buffer.concat([randomBytes(10_000).fill(0x41), Buffer.from(EICAR, "latin1"), Buffer.alloc(5000, 0x42)]);
    const refused = await codeOf(client.upload(uploadStream({}, body, 4096)));
    expect(refused.code).toBe(Code.InvalidArgument);
    expect(refused.message).toContain(EICAR_SIGNATURE_NAME);
    expect(await keysUnder(sut.store, "media/ws-scan/")).toEqual([]);
    expect((await client.getUsage({})).userUsedBytes).toBe(0n);
  });

  it("passes clean files, streamed and resumable", async () => {
    const client = sut.client("mal-clean", "ws-scan-clean");
    const { ref } = await client.upload(uploadStream({}, randomBytes(200_000)));
    expect(ref?.sizeBytes).toBe(200_000n);
    const bytes = randomBytes(50_000);
    const created = await client.createUpload({ header: { sizeBytes: BigInt(bytes.length) } });
    await client.uploadChunk({ uploadId: created.uploadId, offset: 0n, data: bytes });
    expect((await client.completeUpload({ uploadId: created.uploadId })).ref?.sizeBytes).toBe(50_000n);
  });

  it("fails closed with UNAVAILABLE when clamd is down", async () => {
    await clamd.stop();
    const client = sut.client("mal-down", "ws-scan-down");
    const refused = await codeOf(client.upload(uploadStream({}, randomBytes(10_000))));
    expect(refused.code).toBe(Code.Unavailable);
    expect(refused.message).toContain("malware scanner unavailable");
    expect(await keysUnder(sut.store, "media/ws-scan-down/")).toEqual([]);
    expect((await client.getUsage({})).userUsedBytes).toBe(0n);
  });
});
