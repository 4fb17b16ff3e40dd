import type { DatabaseSync, StatementSync } from "node:sqlite";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { type MediaRef, MediaRefSchema } from "../../gen/mentatlab/v1/common_pb.js";
import { databaseCall, inTransaction, once } from "../shared/sqlite.js";
import type { RefIndex, StoredRef } from "./ref-index.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS refs (
  workspace TEXT NOT NULL,
  ref_id TEXT NOT NULL,
  blob_key TEXT NOT NULL,
  ref BLOB NOT NULL,
  PRIMARY KEY (workspace, ref_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ref_digests (
  workspace TEXT NOT NULL,
  bucket_class INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  ref_id TEXT NOT NULL,
  PRIMARY KEY (workspace, bucket_class, sha256)
) WITHOUT ROWID;
`;

const WHAT = "the reference index database";

/** all() reads this many refs per query, so a sweep that deletes as it goes never holds a cursor open. */
const PAGE = 500;

interface RefRow {
  workspace: string;
  ref_id: string;
  blob_key: string;
  ref: Uint8Array;
}

function decode(row: RefRow): StoredRef {
  return { blobKey: row.blob_key, ref: fromBinary(MediaRefSchema, row.ref) };
}

/**
 * Refs and their digest entries in the embedded database, the embedded default: a ref and its digest
 * entry are written in one transaction, and the sweeper's walk is an indexed scan rather than a
 * listing of documents.
 */
export class SqliteRefIndex implements RefIndex {
  private readonly byId: StatementSync;
  private readonly byDigest: StatementSync;
  private readonly upsertRef: StatementSync;
  private readonly upsertDigest: StatementSync;
  private readonly dropDigest: StatementSync;
  private readonly dropRef: StatementSync;
  private readonly pageAfter: StatementSync;

  constructor(private readonly db: DatabaseSync) {
    databaseCall(WHAT, () => db.exec(SCHEMA));
    this.byId = db.prepare("SELECT workspace, ref_id, blob_key, ref FROM refs WHERE workspace = ? AND ref_id = ?");
    this.byDigest = db.prepare("SELECT ref_id FROM ref_digests WHERE workspace = ? AND bucket_class = ? AND sha256 = ?");
    this.upsertRef = db.prepare("INSERT OR REPLACE INTO refs (workspace, ref_id, blob_key, ref) VALUES (?, ?, ?, ?)");
    this.upsertDigest = db.prepare("INSERT OR REPLACE INTO ref_digests (workspace, bucket_class, sha256, ref_id) VALUES (?, ?, ?, ?)");
    this.dropDigest = db.prepare("DELETE FROM ref_digests WHERE workspace = ? AND bucket_class = ? AND sha256 = ? AND ref_id = ?");
    this.dropRef = db.prepare("DELETE FROM refs WHERE workspace = ? AND ref_id = ?");
    this.pageAfter = db.prepare(
      "SELECT workspace, ref_id, blob_key, ref FROM refs WHERE (workspace, ref_id) > (?, ?) ORDER BY workspace, ref_id LIMIT ?",
    );
  }

  /** Copies what an earlier version kept in `previous` (documents in the blob store), once per database. */
  async importFrom(previous: RefIndex): Promise<void> {
    await once(this.db, "refs: import the blob store's documents", async () => {
      for await (const stored of previous.all()) await this.put(stored);
    });
  }

  async get(workspace: string, refId: string): Promise<StoredRef | undefined> {
    const row = databaseCall(WHAT, () => this.byId.get(workspace, refId)) as RefRow | undefined;
    return row && decode(row);
  }

  async findByDigest(workspace: string, ref: Pick<MediaRef, "bucketClass" | "sha256">): Promise<string | undefined> {
    const row = databaseCall(WHAT, () => this.byDigest.get(workspace, ref.bucketClass, ref.sha256)) as { ref_id: string } | undefined;
    return row?.ref_id;
  }

  async put(stored: StoredRef): Promise<void> {
    const { ref } = stored;
    databaseCall(WHAT, () =>
      inTransaction(this.db, () => {
        this.upsertRef.run(ref.workspace, ref.id, stored.blobKey, toBinary(MediaRefSchema, ref));
        this.upsertDigest.run(ref.workspace, ref.bucketClass, ref.sha256, ref.id);
      }),
    );
  }

  async delete(stored: StoredRef): Promise<void> {
    const { ref } = stored;
    databaseCall(WHAT, () =>
      inTransaction(this.db, () => {
        // Only drop the digest entry if it still points at this ref.
        this.dropDigest.run(ref.workspace, ref.bucketClass, ref.sha256, ref.id);
        this.dropRef.run(ref.workspace, ref.id);
      }),
    );
  }

  async *all(): AsyncIterable<StoredRef> {
    let after = { workspace: "", refId: "" };
    for (;;) {
      const rows = databaseCall(WHAT, () => this.pageAfter.all(after.workspace, after.refId, PAGE)) as unknown as RefRow[];
      for (const row of rows) yield decode(row);
      const last = rows.at(-1);
      if (!last || rows.length < PAGE) return;
      after = { workspace: last.workspace, refId: last.ref_id };
    }
  }
}
