import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BlobStore, type ByteSource, readSmall } from "./blob-store.js";

/** A fresh store plus its teardown. */
export interface BlobStoreFixture {
  readonly store: BlobStore;
  dispose(): Promise<void>;
}

async function* chunksOf(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

async function collect(body: ByteSource | undefined): Promise<Buffer> {
  if (!body) throw new Error("missing body");
  const parts: Uint8Array[] = [];
  for await (const part of body) parts.push(part);
  return Buffer.concat(parts);
}

/** The behaviour every BlobStore backend must show; called once per backend. */
export function describeBlobStoreConformance(name: string, factory: () => Promise<BlobStoreFixture>): void {
  describe(`BlobStore conformance: ${name}`, () => {
    let fixture: BlobStoreFixture;
    let store: BlobStore;
    beforeAll(async () => {
      fixture = await factory();
      store = fixture.store;
    });
    afterAll(async () => fixture?.dispose());

    it("writes a streamed body and reads it back byte-exact, whole and by range", async () => {
      const bytes = randomBytes(3 * 1024 * 1024 + 17);
      const written = await store.write("a/b/object", chunksOf(bytes, 100_000));
      expect(written).toBe(bytes.length);
      expect((await store.stat("a/b/object"))?.size).toBe(bytes.length);
      const back = await collect(await store.read("a/b/object"));
      expect(createHash("sha256").update(back).digest("hex")).toBe(createHash("sha256").update(bytes).digest("hex"));
      expect(await collect(await store.read("a/b/object", { offset: 1000, length: 5000 }))).toEqual(bytes.subarray(1000, 6000));
      expect(await collect(await store.read("a/b/object", { offset: bytes.length - 10 }))).toEqual(bytes.subarray(bytes.length - 10));
      expect(await collect(await store.read("a/b/object", { offset: 5, length: 0 }))).toHaveLength(0);
    });

    it("uses multipart for bodies larger than one part", async () => {
      const bytes = randomBytes(20 * 1024 * 1024 + 5);
      expect(await store.write("big/object", chunksOf(bytes, 1024 * 1024))).toBe(bytes.length);
      expect((await store.stat("big/object"))?.size).toBe(bytes.length);
      expect(await collect(await store.read("big/object", { offset: bytes.length - 3 }))).toEqual(bytes.subarray(bytes.length - 3));
    });

    it("keeps nothing when the body fails midway", async () => {
      async function* failing(): AsyncGenerator<Uint8Array> {
        yield randomBytes(1000);
        throw new Error("client went away");
      }
      await expect(store.write("broken/object", failing())).rejects.toThrow("client went away");
      expect(await store.stat("broken/object")).toBeUndefined();
      async function* failingLate(): AsyncGenerator<Uint8Array> {
        for (let i = 0; i < 12; i++) yield randomBytes(1024 * 1024);
        throw new Error("cut off after several parts");
      }
      await expect(store.write("broken/large", failingLate())).rejects.toThrow("cut off after several parts");
      expect(await store.stat("broken/large")).toBeUndefined();
    });

    it("overwrites, deletes idempotently and reports missing keys as undefined", async () => {
      await store.write("doc/x.json", [Buffer.from("one")]);
      await store.write("doc/x.json", [Buffer.from("two")]);
      expect((await readSmall(store, "doc/x.json"))?.toString()).toBe("two");
      await store.delete("doc/x.json");
      await store.delete("doc/x.json");
      expect(await store.stat("doc/x.json")).toBeUndefined();
      expect(await store.read("doc/x.json")).toBeUndefined();
      expect(await readSmall(store, "never/written")).toBeUndefined();
    });

    it("lists by prefix", async () => {
      await store.write("list/p1/a", [Buffer.from("a")]);
      await store.write("list/p1/sub/b", [Buffer.from("bb")]);
      await store.write("list/p2/c", [Buffer.from("ccc")]);
      const keys: string[] = [];
      for await (const info of store.list("list/p1/")) keys.push(info.key);
      expect(keys.sort()).toEqual(["list/p1/a", "list/p1/sub/b"]);
      const none: string[] = [];
      for await (const info of store.list("nothing-here/")) none.push(info.key);
      expect(none).toEqual([]);
    });
  });
}
