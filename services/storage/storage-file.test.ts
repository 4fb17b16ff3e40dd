import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeTempDir, removeTempDir } from "../../test/harness/index.js";
import { codeOf, type RuntimeUnderTest, startRuntime } from "./storage-service.conformance.js";

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
});
