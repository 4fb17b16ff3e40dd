import type { DatabaseSync, StatementSync } from "node:sqlite";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { type MediaRef, MediaRefSchema } from "../../gen/mentatlab/v1/common_pb.js";
import { databaseCall, inTransaction, once } from "../shared/sqlite.js";
import { positionOf, type RefPage, type RefPageQuery } from "./media-listing.js";
import type { RefIndex, StoredRef } from "./ref-index.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS refs (
  workspace TEXT NOT NULL,
  ref_id TEXT NOT NULL,
  blob_key TEXT NOT NULL,
  ref BLOB NOT NULL,
  created_ms INTEGER NOT NULL DEFAULT 0,
  expires_ms INTEGER NOT NULL DEFAULT 0,
  mime_type TEXT NOT NULL DEFAULT '',
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

// Databases written before ListMedia lack the columns it sorts and filters on: they are added, and
// filled from the stored refs, once.
const LISTING_COLUMNS = ["created_ms INTEGER NOT NULL DEFAULT 0", "expires_ms INTEGER NOT NULL DEFAULT 0", "mime_type TEXT NOT NULL DEFAULT ''"];
const LISTING_INDEX = "CREATE INDEX IF NOT EXISTS refs_newest ON refs (workspace, created_ms DESC, ref_id DESC)";

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
  private readonly newest: StatementSync;

  constructor(private readonly db: DatabaseSync) {
    databaseCall(WHAT, () => {
      db.exec(SCHEMA);
      addListingColumns(db);
      db.exec(LISTING_INDEX);
    });
    this.byId = db.prepare("SELECT workspace, ref_id, blob_key, ref FROM refs WHERE workspace = ? AND ref_id = ?");
    this.byDigest = db.prepare("SELECT ref_id FROM ref_digests WHERE workspace = ? AND bucket_class = ? AND sha256 = ?");
    this.upsertRef = db.prepare(
      "INSERT OR REPLACE INTO refs (workspace, ref_id, blob_key, ref, created_ms, expires_ms, mime_type) VALUES (?, ?, ?, ?, ?, ?, ?)",
    );
    this.upsertDigest = db.prepare("INSERT OR REPLACE INTO ref_digests (workspace, bucket_class, sha256, ref_id) VALUES (?, ?, ?, ?)");
    this.dropDigest = db.prepare("DELETE FROM ref_digests WHERE workspace = ? AND bucket_class = ? AND sha256 = ? AND ref_id = ?");
    this.dropRef = db.prepare("DELETE FROM refs WHERE workspace = ? AND ref_id = ?");
    this.pageAfter = db.prepare("SELECT workspace, ref_id, blob_key, ref FROM refs WHERE (workspace, ref_id) > (?, ?) ORDER BY workspace, ref_id LIMIT ?");
    this.newest = db.prepare(
      `SELECT workspace, ref_id, blob_key, ref FROM refs
       WHERE workspace = ? AND (expires_ms = 0 OR expires_ms > ?) AND substr(mime_type, 1, ?) = ?
         AND (created_ms < ? OR (created_ms = ? AND ref_id < ?))
       ORDER BY created_ms DESC, ref_id DESC LIMIT ?`,
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
        this.upsertRef.run(ref.workspace, ref.id, stored.blobKey, toBinary(MediaRefSchema, ref), ...listingValues(ref));
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

  async list(workspace: string, query: RefPageQuery): Promise<RefPage> {
    const { createdMs, refId } = query.after ?? { createdMs: Number.MAX_SAFE_INTEGER, refId: "" };
    const prefix = query.mimeTypePrefix;
    const rows = databaseCall(WHAT, () =>
      this.newest.all(workspace, query.nowMs, prefix.length, prefix, createdMs, createdMs, refId, query.pageSize + 1),
    ) as unknown as RefRow[];
    const refs = rows.slice(0, query.pageSize).map((row) => decode(row).ref);
    const last = refs.at(-1);
    return { refs, ...(rows.length > query.pageSize && last ? { next: positionOf(last) } : {}) };
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

/** The columns ListMedia sorts and filters on, as `put` writes them. */
function listingValues(ref: MediaRef): [number, number, string] {
  return [positionOf(ref).createdMs, ref.expiresAt ? timestampMs(ref.expiresAt) : 0, ref.mimeType];
}

function addListingColumns(db: DatabaseSync): void {
  const columns = new Set((db.prepare("PRAGMA table_info(refs)").all() as { name: string }[]).map((column) => column.name));
  if (columns.has("created_ms")) return;
  inTransaction(db, () => {
    for (const column of LISTING_COLUMNS) db.exec(`ALTER TABLE refs ADD COLUMN ${column}`);
    const fill = db.prepare("UPDATE refs SET created_ms = ?, expires_ms = ?, mime_type = ? WHERE workspace = ? AND ref_id = ?");
    for (const row of db.prepare("SELECT workspace, ref_id, blob_key, ref FROM refs").all() as unknown as RefRow[]) {
      fill.run(...listingValues(decode(row).ref), row.workspace, row.ref_id);
    }
  });
}
