import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, describe, expect, it } from "vitest";
import { makeTempDir, removeTempDir } from "../../test/harness/index.js";
import { databaseCall, databaseFileFromEnv, inTransaction, openDatabase } from "./sqlite.js";

const dir = makeTempDir("sqlite");
afterAll(() => removeTempDir(dir));

describe("the embedded database", () => {
  it("lives in the data dir unless MENTATLAB_DATABASE says otherwise", () => {
    expect(databaseFileFromEnv({}, "/data")).toBe("/data/mentatlab.db");
    expect(databaseFileFromEnv({ MENTATLAB_DATABASE: "/srv/ml.db" }, "/data")).toBe("/srv/ml.db");
    expect(databaseFileFromEnv({ MENTATLAB_DATABASE: "memory" }, "/data")).toBeUndefined();
  });

  it("opens in WAL mode with a busy timeout, creating its directory", () => {
    const db = openDatabase(join(dir, "nested", "a.db"));
    expect(db.prepare("PRAGMA journal_mode").get()).toEqual({ journal_mode: "wal" });
    expect(db.prepare("PRAGMA busy_timeout").get()).toEqual({ timeout: 5000 });
    db.close();
  });

  it("rolls a failed transaction back whole", () => {
    const db = openDatabase(join(dir, "tx.db"));
    db.exec("CREATE TABLE t (n INTEGER PRIMARY KEY)");
    expect(() =>
      inTransaction(db, () => {
        db.prepare("INSERT INTO t VALUES (1)").run();
        db.prepare("INSERT INTO t VALUES (1)").run();
      }),
    ).toThrow();
    expect(db.prepare("SELECT count(*) AS n FROM t").get()).toEqual({ n: 0 });
    db.close();
  });

  it("turns a database failure into UNAVAILABLE naming what failed, without server paths", () => {
    const db = openDatabase(join(dir, "fail.db"));
    const failure = (() => {
      try {
        return databaseCall("the test database", () => db.exec("SELECT * FROM missing_table"));
      } catch (err) {
        return err;
      }
    })();
    expect(failure).toBeInstanceOf(ConnectError);
    expect((failure as ConnectError).code).toBe(Code.Unavailable);
    expect((failure as ConnectError).rawMessage).toBe("the test database is unavailable (SQL logic error); retry shortly");
    db.close();
  });
});
