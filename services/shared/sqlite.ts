import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import type { Env } from "./env.js";
import { storeUnavailableError } from "./store-unavailable.js";

/**
 * How long a statement waits for another connection's write transaction (the storage and orchestrator
 * services each hold one connection to the same file) before it gives up with SQLITE_BUSY.
 */
const BUSY_TIMEOUT_MS = 5_000;

/**
 * `MENTATLAB_DATABASE`: the embedded database file, `<dataDir>/mentatlab.db` by default; `memory` keeps
 * that state in process memory instead (lost on restart). Undefined means memory.
 */
export function databaseFileFromEnv(env: Env, dataDir: string): string | undefined {
  const configured = env.MENTATLAB_DATABASE?.trim();
  if (configured === "memory") return undefined;
  return configured || join(dataDir, "mentatlab.db");
}

/**
 * Opens (creating it and its directory if needed) the embedded database. WAL lets readers run beside
 * the one writer; synchronous=NORMAL keeps every committed transaction across a crash of the process
 * (kill -9), while a power cut may lose the last ones.
 */
export function openDatabase(file: string): DatabaseSync {
  mkdirSync(dirname(file), { recursive: true });
  const db = new DatabaseSync(file, { timeout: BUSY_TIMEOUT_MS });
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;");
  return db;
}

/**
 * Runs `body` in one write transaction: BEGIN IMMEDIATE takes the write lock up front, so a
 * read-then-write (a quota check, a seq check) cannot interleave with another connection's.
 */
export function inTransaction<T>(db: DatabaseSync, body: () => T): T {
  db.exec("BEGIN IMMEDIATE");
  try {
    const result = body();
    db.exec("COMMIT");
    return result;
  } catch (err) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw err;
  }
}

/**
 * Runs `body` (an import of what an older version kept elsewhere) once per database file: it is
 * recorded as done only after it finished, so one cut short by a crash runs again at the next start
 * and must be safe to repeat.
 */
export async function once(db: DatabaseSync, name: string, body: () => Promise<void>): Promise<void> {
  db.exec("CREATE TABLE IF NOT EXISTS done_once (name TEXT PRIMARY KEY, done_at_ms INTEGER NOT NULL) WITHOUT ROWID");
  if (db.prepare("SELECT 1 FROM done_once WHERE name = ?").get(name)) return;
  await body();
  db.prepare("INSERT OR REPLACE INTO done_once (name, done_at_ms) VALUES (?, ?)").run(name, Date.now());
}

/**
 * Runs a database call; a failure of the database itself (busy past the timeout, disk full, file
 * gone) becomes UNAVAILABLE naming `what` (see store-unavailable.ts).
 */
export function databaseCall<T>(what: string, call: () => T): T {
  try {
    return call();
  } catch (err) {
    const reason = (err as { code?: unknown }).code === "ERR_SQLITE_ERROR" ? sqliteReason(err) : "it could not be reached";
    throw storeUnavailableError(what, reason, err);
  }
}

function sqliteReason(err: unknown): string {
  const errstr = (err as { errstr?: unknown }).errstr;
  return typeof errstr === "string" ? errstr : "database error";
}
