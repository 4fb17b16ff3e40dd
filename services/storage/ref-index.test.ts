import { join } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
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

describe("SqliteRefIndex on a database from before ListMedia", () => {
  it("adds the listing columns once, filled from the refs already stored", async () => {
    const dir = makeTempDir("ref-index-migrate");
    const db = openDatabase(join(dir, "mentatlab.db"));
    try {
      db.exec(
        "CREATE TABLE refs (workspace TEXT NOT NULL, ref_id TEXT NOT NULL, blob_key TEXT NOT NULL, ref BLOB NOT NULL, PRIMARY KEY (workspace, ref_id)) WITHOUT ROWID",
      );
      const older = create(MediaRefSchema, { id: newRefId(), workspace: "ws", mimeType: "image/png", createdAt: timestampFromMs(1_000) });
      const newer = create(MediaRefSchema, { id: newRefId(), workspace: "ws", mimeType: "audio/wav", createdAt: timestampFromMs(2_000) });
      const insert = db.prepare("INSERT INTO refs (workspace, ref_id, blob_key, ref) VALUES (?, ?, ?, ?)");
      for (const ref of [older, newer]) insert.run("ws", ref.id, `media/ws/${ref.id}`, toBinary(MediaRefSchema, ref));
      const index = new SqliteRefIndex(db);
      const query = { pageSize: 10, mimeTypePrefix: "", nowMs: 3_000 };
      expect((await index.list("ws", query)).refs.map((r) => r.id)).toEqual([newer.id, older.id]);
      expect((await index.list("ws", { ...query, mimeTypePrefix: "image/" })).refs.map((r) => r.id)).toEqual([older.id]);
      // A second open finds the columns there and leaves them alone.
      expect((await new SqliteRefIndex(db).list("ws", query)).refs).toHaveLength(2);
    } finally {
      db.close();
      removeTempDir(dir);
    }
  });
});
