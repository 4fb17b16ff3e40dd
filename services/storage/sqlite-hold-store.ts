import type { DatabaseSync, StatementSync } from "node:sqlite";
import { databaseCall, once } from "../shared/sqlite.js";
import { uploadHoldOf, type Hold, type HoldStore } from "./hold-store.js";
import type { StoredRef } from "./ref-index.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS holds (
  workspace TEXT NOT NULL,
  ref_id TEXT NOT NULL,
  holder TEXT NOT NULL,
  expires_ms INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  PRIMARY KEY (workspace, ref_id, holder)
) WITHOUT ROWID;
`;

const WHAT = "the holds database";
const PAGE = 500;

interface HoldRow {
  workspace: string;
  ref_id: string;
  holder: string;
  expires_ms: number;
  created_ms: number;
}

function decode(row: HoldRow): Hold {
  return { workspace: row.workspace, refId: row.ref_id, holder: row.holder, expiresMs: row.expires_ms, createdMs: row.created_ms };
}

/** Holds in the embedded database, the same file as the ref index. */
export class SqliteHoldStore implements HoldStore {
  private readonly upsert: StatementSync;
  private readonly drop: StatementSync;
  private readonly ofObject: StatementSync;
  private readonly workspacePage: StatementSync;
  private readonly page: StatementSync;

  constructor(private readonly db: DatabaseSync) {
    databaseCall(WHAT, () => db.exec(SCHEMA));
    this.upsert = db.prepare(
      `INSERT INTO holds (workspace, ref_id, holder, expires_ms, created_ms) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (workspace, ref_id, holder) DO UPDATE SET expires_ms = excluded.expires_ms`,
    );
    this.drop = db.prepare("DELETE FROM holds WHERE workspace = ? AND ref_id = ? AND holder = ?");
    this.ofObject = db.prepare("SELECT * FROM holds WHERE workspace = ? AND ref_id = ?");
    this.workspacePage = db.prepare("SELECT * FROM holds WHERE workspace = ? AND (ref_id, holder) > (?, ?) ORDER BY ref_id, holder LIMIT ?");
    this.page = db.prepare("SELECT * FROM holds WHERE (workspace, ref_id, holder) > (?, ?, ?) ORDER BY workspace, ref_id, holder LIMIT ?");
  }

  async add(hold: Hold): Promise<void> {
    databaseCall(WHAT, () => this.upsert.run(hold.workspace, hold.refId, hold.holder, hold.expiresMs, hold.createdMs));
  }

  async remove(workspace: string, refId: string, holder: string): Promise<boolean> {
    return databaseCall(WHAT, () => this.drop.run(workspace, refId, holder)).changes > 0;
  }

  async holdsOf(workspace: string, refId: string): Promise<Hold[]> {
    return (databaseCall(WHAT, () => this.ofObject.all(workspace, refId)) as unknown as HoldRow[]).map(decode);
  }

  async *ofWorkspace(workspace: string): AsyncIterable<Hold> {
    let after = { refId: "", holder: "" };
    for (;;) {
      const rows = databaseCall(WHAT, () => this.workspacePage.all(workspace, after.refId, after.holder, PAGE)) as unknown as HoldRow[];
      yield* rows.map(decode);
      const last = rows.at(-1);
      if (!last || rows.length < PAGE) return;
      after = { refId: last.ref_id, holder: last.holder };
    }
  }

  async *all(): AsyncIterable<Hold> {
    let after = { workspace: "", refId: "", holder: "" };
    for (;;) {
      const rows = databaseCall(WHAT, () => this.page.all(after.workspace, after.refId, after.holder, PAGE)) as unknown as HoldRow[];
      yield* rows.map(decode);
      const last = rows.at(-1);
      if (!last || rows.length < PAGE) return;
      after = { workspace: last.workspace, refId: last.ref_id, holder: last.holder };
    }
  }

  async adoptOnce(refs: AsyncIterable<StoredRef>, nowMs: number): Promise<void> {
    await once(this.db, "holds: adopt refs stored before holds", async () => {
      for await (const stored of refs) await this.add(uploadHoldOf(stored.ref, nowMs));
    });
  }
}
