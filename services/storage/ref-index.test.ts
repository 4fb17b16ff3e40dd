import { join } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { MediaRefSchema } from "../../gen/mentatlab/v1/common_pb.js";
import { makeTempDir, removeTempDir } from "../../test/harness/index.js";
import { openDatabase } from "../shared/sqlite.js";
import { FileBlobStore } from "./file-blob-store.js";
import { newRefId } from "./keys.js";
import { describeRefIndexConformance } from "./ref-index.conformance.js";
import { BlobRefIndex, type StoredRef } from "./ref-index.js";
import { SqliteRefIndex } from "./sqlite-ref-index.js";

describeRefIndexConformance("documents in the file blob store", async () => {
  const dir = makeTempDir("ref-index-files");
  const store = new FileBlobStore(dir);
  return {
    index: new BlobRefIndex(store),
    dispose: async () => {
      await store.close();
      removeTempDir(dir);
    },
  };
});

describeRefIndexConformance("sqlite", async () => {
  const dir = makeTempDir("ref-index-sqlite");
  const db = openDatabase(join(dir, "mentatlab.db"));
  return {
    index: new SqliteRefIndex(db),
    dispose: async () => {
      db.close();
      removeTempDir(dir);
    },
  };
});

describe("SqliteRefIndex import", () => {
  it("copies the blob store's ref documents once, so refs stored before the database stay found", async () => {
    const dir = makeTempDir("ref-index-import");
    const store = new FileBlobStore(join(dir, "objects"));
    const opened: DatabaseSync[] = [];
    try {
      const documents = new BlobRefIndex(store);
      const old: StoredRef = {
        blobKey: "media/ws/abc",
        ref: create(MediaRefSchema, { id: newRefId(), workspace: "ws", sha256: "dd".repeat(32), sizeBytes: 7n }),
      };
      await documents.put(old);
      const db = openDatabase(join(dir, "mentatlab.db"));
      opened.push(db);
      const index = new SqliteRefIndex(db);
      await index.importFrom(documents);
      expect(await index.get("ws", old.ref.id)).toEqual(old);
      expect(await index.findByDigest("ws", old.ref)).toBe(old.ref.id);
      // Once imported, the database is the index: later documents are not copied again.
      await index.delete(old);
      await index.importFrom(documents);
      expect(await index.get("ws", old.ref.id)).toBeUndefined();
    } finally {
      for (const db of opened) db.close();
      await store.close();
      removeTempDir(dir);
    }
  });
});
