import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { afterAll, describe, expect, it } from "vitest";
import { RunEventSchema, RunSchema, RunState } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { makeTempDir, removeTempDir } from "../../test/harness/index.js";
import { openDatabase } from "../shared/sqlite.js";
import { newRunId } from "./run-id.js";
import { describeRunStoreConformance } from "./run-store.conformance.js";
import { SqliteRunStore } from "./sqlite-run-store.js";

const dir = makeTempDir("runs-sqlite");
afterAll(() => removeTempDir(dir));
let files = 0;

describeRunStoreConformance("sqlite", async () => {
  const db = openDatabase(join(dir, `conformance-${files++}.db`));
  const store = new SqliteRunStore(db, 1);
  return {
    store,
    peer: async () => store,
    async cleanup() {
      await store.close();
      db.close();
    },
  };
});

describe("SqliteRunStore across a reopen of its file", () => {
  it("keeps snapshots, events with their seq, and leases", async () => {
    const file = join(dir, "reopen.db");
    const run = create(RunSchema, { runId: newRunId(Date.now()), workspace: "ws", state: RunState.PENDING, lastEventSeq: 1n });
    const event = (seq: bigint) => create(RunEventSchema, { seq, runId: run.runId, event: { case: "runState", value: { state: RunState.RUNNING } } });
    const first = openDatabase(file);
    const before = new SqliteRunStore(first, 3600);
    await before.create(run, [event(1n)], "req-1");
    expect(await before.acquireLease(run.runId, "gone", 60_000)).toBe(true);
    await before.append(run.runId, "gone", [event(2n), event(3n)], { ...run, state: RunState.RUNNING, lastEventSeq: 3n });
    first.close();

    const second = openDatabase(file);
    const after = new SqliteRunStore(second, 3600);
    expect((await after.get(run.runId))?.state).toBe(RunState.RUNNING);
    expect((await after.events(run.runId, 1n, 10)).map((e) => e.seq)).toEqual([2n, 3n]);
    expect((await after.create(create(RunSchema, { runId: newRunId(Date.now()), workspace: "ws" }), [], "req-1")).run.runId).toBe(run.runId);
    expect(await after.unfinished()).toEqual([run.runId]);
    // The lease of the process that wrote it still holds until it lapses.
    expect(await after.acquireLease(run.runId, "new", 1000)).toBe(false);
    expect(await after.append(run.runId, "new", [event(4n)], run)).toBe(false);
    second.close();
  });
});

describe("SqliteRunStore once closed", () => {
  it("refuses appends as a lost lease would, so a driver flushing during shutdown stops quietly", async () => {
    const db = openDatabase(join(dir, "closed.db"));
    const store = new SqliteRunStore(db, 3600);
    const run = create(RunSchema, { runId: newRunId(Date.now()), workspace: "ws", state: RunState.PENDING, lastEventSeq: 1n });
    await store.create(run, [], "");
    expect(await store.acquireLease(run.runId, "me", 60_000)).toBe(true);
    await store.close();
    db.close();
    const late = create(RunEventSchema, { seq: 1n, runId: run.runId, event: { case: "runState", value: { state: RunState.RUNNING } } });
    expect(await store.append(run.runId, "me", [late], run)).toBe(false);
  });
});
