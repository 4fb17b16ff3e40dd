import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeTempDir, removeTempDir } from "../../test/harness/index.js";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { codeOf, type RuntimeUnderTest, startRuntime, uploadStream } from "./storage-service.conformance.js";

describe("StorageService on the file backend only", () => {
  let root: string;
  let sut: RuntimeUnderTest;
  beforeAll(async () => {
    root = makeTempDir("storage-file-only");
    sut = await startRuntime({ freshEnv: async () => ({ STORAGE_DIR: root }), dispose: async () => {} });
  });
  afterAll(async () => {
    await sut?.close();
    removeTempDir(root);
  });

  it("has no lifecycle rules to apply", () => {
    expect(sut.runtime.lifecycle).toBeUndefined();
  });

  it("refuses presigned uploads, which need S3, before reserving anything", async () => {
    const client = sut.client();
    const refused = await codeOf(client.createUpload({ header: { sizeBytes: 10n }, presigned: true }));
    expect(refused.code).toBe(Code.FailedPrecondition);
    expect(refused.message).toContain("UploadChunk");
    expect((await client.getUsage({})).userUsedBytes).toBe(0n);
  });

  it("finds and charges objects stored before the embedded database existed, once", async () => {
    const dir = makeTempDir("storage-import");
    const backend = { freshEnv: async () => ({ STORAGE_DIR: join(dir, "objects") }), dispose: async () => {} };
    try {
      const before = await startRuntime(backend, { MENTATLAB_DATABASE: "memory" });
      const { ref } = await before.client("ivan", "ws-import").upload(uploadStream({}, randomBytes(3000)));
      await before.client("ivan", "ws-import").upload(uploadStream({}, randomBytes(4000)));
      await before.close();
      for (let start = 0; start < 2; start++) {
        const after = await startRuntime(backend, { MENTATLAB_DATABASE: join(dir, "mentatlab.db") });
        expect(await after.client("ivan", "ws-import").getUsage({})).toMatchObject({
          userUsedBytes: 7000n,
          workspaceUsedBytes: 7000n,
          workspaceObjectCount: 2n,
        });
        expect((await after.client("ivan", "ws-import").stat({ refId: ref!.id })).ref?.sizeBytes).toBe(3000n);
        await after.close();
      }
    } finally {
      removeTempDir(dir);
    }
  });
});
