import { randomBytes } from "node:crypto";
import { GetBucketLifecycleConfigurationCommand } from "@aws-sdk/client-s3";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type S3Server, startS3 } from "../../test/harness/index.js";
import { S3BlobStore } from "./s3-blob-store.js";
import { codeOf, downloadAll, keysUnder, type RuntimeUnderTest, sha256, startRuntime } from "./storage-service.conformance.js";

describe("StorageService on S3 only", () => {
  let s3: S3Server;
  let sut: RuntimeUnderTest;
  beforeAll(async () => {
    s3 = await startS3();
    sut = await startRuntime({
      freshEnv: async () => ({
        S3_ENDPOINT: s3.endpoint,
        S3_BUCKET: await s3.createBucket(`s3only-${Date.now()}`),
        AWS_ACCESS_KEY_ID: s3.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      }),
      dispose: async () => {},
    });
  });
  afterAll(async () => {
    await sut?.close();
    await s3?.stop();
  });

  it("applies bucket lifecycle rules archiving media and expiring abandoned uploads, never expiring held objects", async () => {
    expect(sut.runtime.lifecycle).toBe("applied");
    const store = sut.store as S3BlobStore;
    const { Rules } = await store.client.send(new GetBucketLifecycleConfigurationCommand({ Bucket: store.bucket }));
    const byId = new Map((Rules ?? []).map((r) => [r.ID, r]));
    expect(byId.get("mentatlab-media")?.Expiration).toBeUndefined();
    expect(byId.get("mentatlab-media")?.Transitions?.[0]).toMatchObject({ Days: 1, StorageClass: "GLACIER" });
    expect(byId.has("mentatlab-temp")).toBe(false);
    expect(byId.get("mentatlab-uploads")?.AbortIncompleteMultipartUpload?.DaysAfterInitiation).toBe(1);
  });

  it("takes a presigned PUT, then verifies and registers it on CompleteUpload", async () => {
    const client = sut.client("pat", "ws-presigned");
    const bytes = randomBytes(3 * 1024 * 1024);
    const created = await client.createUpload({ header: { sizeBytes: BigInt(bytes.length), sha256: sha256(bytes) }, presigned: true });
    expect(created.presignedPutUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\//);
    expect((await codeOf(client.completeUpload({ uploadId: created.uploadId })))?.code).toBe(Code.FailedPrecondition);
    expect((await codeOf(client.uploadChunk({ uploadId: created.uploadId, offset: 0n, data: bytes.subarray(0, 10) }))).code).toBe(Code.FailedPrecondition);
    const put = await fetch(created.presignedPutUrl, { method: "PUT", body: bytes, headers: created.presignedPutHeaders });
    expect(put.status).toBe(200);
    const { ref } = await client.completeUpload({ uploadId: created.uploadId });
    expect(ref).toMatchObject({ sha256: sha256(bytes), sizeBytes: BigInt(bytes.length) });
    expect(sha256((await downloadAll(client, ref!.id)).bytes)).toBe(sha256(bytes));
    expect(await keysUnder(sut.store, `uploads/${created.uploadId}/`)).toEqual([]);
  });

  it("discards a presigned upload whose bytes do not match the declared digest", async () => {
    const client = sut.client("pat-bad", "ws-presigned-bad");
    const bytes = randomBytes(5000);
    const created = await client.createUpload({ header: { sha256: "a".repeat(64) }, presigned: true });
    await fetch(created.presignedPutUrl, { method: "PUT", body: bytes });
    expect((await codeOf(client.completeUpload({ uploadId: created.uploadId }))).code).toBe(Code.InvalidArgument);
    expect(await keysUnder(sut.store, `uploads/${created.uploadId}/`)).toEqual([]);
    expect(await keysUnder(sut.store, "media/ws-presigned-bad/")).toEqual([]);
    expect((await client.getUsage({})).userUsedBytes).toBe(0n);
  });
});
