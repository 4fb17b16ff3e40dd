import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BucketClass, MediaRefSchema } from "../../gen/mentatlab/v1/common_pb.js";
import { newRefId } from "./keys.js";
import type { RefPageQuery } from "./media-listing.js";
import type { RefIndex, StoredRef } from "./ref-index.js";

export interface RefIndexFixture {
  readonly index: RefIndex;
  dispose(): Promise<void>;
}

/** The behaviour every RefIndex backend must show; the factory builds an empty index. */
export function describeRefIndexConformance(name: string, factory: () => Promise<RefIndexFixture>): void {
  describe(`RefIndex conformance: ${name}`, () => {
    let fixture: RefIndexFixture;
    let index: RefIndex;
    beforeEach(async () => {
      fixture = await factory();
      index = fixture.index;
    });
    afterEach(async () => fixture?.dispose());

    const stored = (workspace: string, sha256: string, bucketClass = BucketClass.MEDIA): StoredRef => {
      const ref = create(MediaRefSchema, {
        id: newRefId(),
        workspace,
        bucketClass,
        sha256,
        sizeBytes: 42n,
        mimeType: "image/png",
        owner: "alice",
        filename: "a.png",
        metadata: { width: 3, height: 2 },
      });
      return { ref, blobKey: `media/${workspace}/${ref.id}` };
    };

    it("lists a workspace's refs newest first, a page at a time, by MIME type, leaving expired ones out", async () => {
      const now = Date.now();
      const at = (ms: number, mimeType: string, expiresMs?: number): StoredRef => {
        const s = stored("ws-list", `${ms}`.padStart(64, "0"));
        s.ref.createdAt = timestampFromMs(ms);
        s.ref.mimeType = mimeType;
        if (expiresMs !== undefined) s.ref.expiresAt = timestampFromMs(expiresMs);
        return s;
      };
      const refs = [at(now - 5000, "image/png"), at(now - 4000, "audio/wav"), at(now - 3000, "image/jpeg"), at(now - 2000, "text/plain", now + 60_000)];
      // Two refs stored in the same millisecond are ordered by id, so pages never repeat or skip one.
      const twins = [at(now - 1000, "image/png"), at(now - 1000, "image/png")].sort((a, b) => (a.ref.id < b.ref.id ? 1 : -1));
      const expired = at(now - 500, "image/png", now - 1);
      for (const s of [...refs, ...twins, expired, stored("ws-other", "ee".repeat(32))]) await index.put(s);
      const query = (overrides: Partial<RefPageQuery> = {}): RefPageQuery => ({ pageSize: 2, mimeTypePrefix: "", nowMs: now, ...overrides });

      const seen: string[] = [];
      let page = await index.list("ws-list", query());
      for (;;) {
        seen.push(...page.refs.map((r) => r.id));
        if (!page.next) break;
        page = await index.list("ws-list", query({ after: page.next }));
      }
      expect(seen).toEqual([...twins, ...refs.reverse()].map((s) => s.ref.id));
      const images = await index.list("ws-list", query({ pageSize: 10, mimeTypePrefix: "image/" }));
      expect(images.refs.map((r) => r.mimeType)).toEqual(["image/png", "image/png", "image/jpeg", "image/png"]);
      expect(images.next).toBeUndefined();
      expect((await index.list("ws-none", query())).refs).toEqual([]);
      await index.delete(twins[0]!);
      expect((await index.list("ws-list", query({ pageSize: 1 }))).refs[0]?.id).toBe(twins[1]!.ref.id);
    });

    it("returns what was stored, field for field, only in its workspace", async () => {
      const a = stored("ws-a", "aa".repeat(32));
      await index.put(a);
      expect(await index.get("ws-a", a.ref.id)).toEqual(a);
      expect(await index.get("ws-b", a.ref.id)).toBeUndefined();
      expect(await index.get("ws-a", newRefId())).toBeUndefined();
    });

    it("finds a ref by digest per workspace and bucket class", async () => {
      const a = stored("ws-a", "bb".repeat(32));
      await index.put(a);
      expect(await index.findByDigest("ws-a", a.ref)).toBe(a.ref.id);
      expect(await index.findByDigest("ws-a", { bucketClass: BucketClass.TEMP, sha256: a.ref.sha256 })).toBeUndefined();
      expect(await index.findByDigest("ws-b", a.ref)).toBeUndefined();
    });

    it("forgets a deleted ref, keeping a digest entry that points at another ref", async () => {
      const first = stored("ws-a", "cc".repeat(32));
      const second = stored("ws-a", "cc".repeat(32));
      await index.put(first);
      await index.put(second);
      await index.delete(first);
      expect(await index.get("ws-a", first.ref.id)).toBeUndefined();
      expect(await index.findByDigest("ws-a", first.ref)).toBe(second.ref.id);
      await index.delete(second);
      expect(await index.findByDigest("ws-a", first.ref)).toBeUndefined();
    });

    it("walks every ref, even while the walker deletes what it saw", async () => {
      const refs = Array.from({ length: 30 }, (_, i) => stored(`ws-${i % 3}`, i.toString(16).padStart(64, "0")));
      for (const r of refs) await index.put(r);
      const seen: string[] = [];
      for await (const r of index.all()) {
        seen.push(r.ref.id);
        await index.delete(r);
      }
      expect(seen.sort()).toEqual(refs.map((r) => r.ref.id).sort());
      const left: StoredRef[] = [];
      for await (const r of index.all()) left.push(r);
      expect(left).toEqual([]);
    });
  });
}
