import { randomBytes } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HolderKind } from "../../gen/mentatlab/v1/storage_pb.js";
import { makeTempDir, removeTempDir } from "../../test/harness/index.js";
import type { CrashPoint } from "./ref-remover.js";
import {
  codeOf,
  keysUnder,
  type RuntimeUnderTest,
  s3AndRedisBackend,
  type StorageBackendFixture,
  startRuntime,
  uploadStream,
} from "./storage-service.conformance.js";

const HOUR = 3_600_000;

/** Every order of `items`. */
function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [items.slice()];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

/** What the test believes holds each object: the oracle every step is checked against. */
type Model = Map<string, { size: number; holders: Set<string> }>;

async function expectMatches(sut: RuntimeUnderTest, workspace: string, model: Model): Promise<void> {
  const client = sut.client("alice", workspace);
  let heldBytes = 0;
  const byKind = new Map<HolderKind, number>();
  for (const [refId, { size, holders }] of model) {
    const stat = await codeOf(client.stat({ refId }));
    // Nothing held is ever deleted; nothing unheld stays visible.
    expect({ refId, found: stat.code === undefined }).toEqual({ refId, found: holders.size > 0 });
    if (holders.size === 0) continue;
    heldBytes += size;
    const kinds = new Set([...holders].map((h) => (h.startsWith("upload:") ? HolderKind.UPLOAD : HolderKind.RUN)));
    for (const kind of kinds) byKind.set(kind, (byKind.get(kind) ?? 0) + size);
  }
  const usage = await client.getUsage({});
  expect(usage.workspaceUsedBytes).toBe(BigInt(heldBytes));
  expect(usage.userUsedBytes).toBe(BigInt(heldBytes));
  expect(new Map(usage.byHolder.map((u) => [u.kind, Number(u.bytes)]))).toEqual(byKind);
  const held = [...model.values()].filter((o) => o.holders.size > 0).length;
  expect((await keysUnder(sut.store, `media/${workspace}/`)).length).toBe(held);
}

function describeGarbageCollection(name: string, factory: () => Promise<StorageBackendFixture>): void {
  describe(`garbage collection: ${name}`, () => {
    let backend: StorageBackendFixture;
    beforeAll(async () => {
      backend = await factory();
    });
    afterAll(async () => backend?.dispose());

    /** One upload of `shared` by the user, the same bytes as the output of two runs, plus one run-only object. */
    async function setUp(sut: RuntimeUnderTest, workspace: string): Promise<{ model: Model; shared: string; own: string }> {
      const user = sut.client("alice", workspace);
      const bytes = randomBytes(5000);
      const { ref } = await user.upload(uploadStream({}, bytes));
      const run1 = await user.upload(uploadStream({}, bytes));
      const run2 = await user.upload(uploadStream({}, bytes));
      // Dedup: the runs' identical outputs are the user's object, stored once.
      expect([run1.deduplicated, run2.deduplicated, run1.ref?.id, run2.ref?.id]).toEqual([true, true, ref!.id, ref!.id]);
      const { ref: other } = await user.upload(uploadStream({}, randomBytes(3000)));
      await user.holdMedia({ holder: "run:r1", refIds: [ref!.id, other!.id] });
      await user.holdMedia({ holder: "run:r2", refIds: [ref!.id] });
      // Holding again is idempotent.
      expect((await user.holdMedia({ holder: "run:r2", refIds: [ref!.id] })).heldBytes).toBe(5000n);
      // The run-only object: its upload hold goes at once, so only run r1 holds it.
      expect(await user.delete({ refId: other!.id })).toMatchObject({ freedBytes: 0n, remainingHolders: 1 });
      const model: Model = new Map([
        [ref!.id, { size: 5000, holders: new Set([`upload:${ref!.id}`, "run:r1", "run:r2"]) }],
        [other!.id, { size: 3000, holders: new Set(["run:r1"]) }],
      ]);
      return { model, shared: ref!.id, own: other!.id };
    }

    async function release(sut: RuntimeUnderTest, workspace: string, model: Model, holder: string): Promise<void> {
      const client = sut.client("alice", workspace);
      if (holder.startsWith("upload:")) await client.delete({ refId: holder.slice("upload:".length) });
      else await client.releaseMedia({ holder, refIds: [...model.keys()] });
      for (const object of model.values()) object.holders.delete(holder);
    }

    it("deletes a shared blob only when its last holder goes, in every order, with quota equal to what is held", async () => {
      const sut = await startRuntime(backend);
      try {
        let n = 0;
        for (const order of permutations(["upload", "run:r1", "run:r2"])) {
          const workspace = `ws-order-${n++}`;
          const { model, shared } = await setUp(sut, workspace);
          await expectMatches(sut, workspace, model);
          for (const step of order) {
            await release(sut, workspace, model, step === "upload" ? `upload:${shared}` : step);
            await expectMatches(sut, workspace, model);
            // A sweep far in the future (every grace period passed) deletes nothing still held.
            await sut.runtime.sweep(Date.now() + 2 * HOUR);
            await expectMatches(sut, workspace, model);
          }
          // Releasing again is idempotent; a deleted object is NOT_FOUND.
          expect(await sut.client("alice", workspace).releaseMedia({ holder: "run:r1", refIds: [shared] })).toMatchObject({ freedBytes: 0n, deletedCount: 0n });
          expect((await codeOf(sut.client("alice", workspace).delete({ refId: shared }))).code).toBe(Code.NotFound);
        }
      } finally {
        await sut.close();
      }
    });

    it("refuses to hold what is not there, or another workspace's object", async () => {
      const sut = await startRuntime(backend);
      try {
        const client = sut.client("alice", "ws-bad-hold");
        expect((await codeOf(client.holdMedia({ holder: "run:r", refIds: ["m_AAAAAAAAAAAAAAAAAAAAAA"] }))).code).toBe(Code.NotFound);
        // Another workspace's object is as missing as no object.
        const { ref } = await sut.client("bob", "ws-other").upload(uploadStream({}, randomBytes(100)));
        expect((await codeOf(client.holdMedia({ holder: "run:r", refIds: [ref!.id] }))).code).toBe(Code.NotFound);
      } finally {
        await sut.close();
      }
    });

    it("keeps a run's output past the upload's own expiry, until the run releases it", async () => {
      const sut = await startRuntime(backend, { STORAGE_MEDIA_TTL_SECONDS: "1" });
      try {
        const client = sut.client("alice", "ws-retention");
        const { ref } = await client.upload(uploadStream({}, randomBytes(2000)));
        await client.holdMedia({ holder: "run:r", refIds: [ref!.id] });
        await sut.runtime.sweep(Date.now() + 2 * HOUR);
        expect((await client.stat({ refId: ref!.id })).ref?.id).toBe(ref!.id);
        expect((await client.getUsage({})).byHolder.map((u) => u.kind)).toEqual([HolderKind.RUN]);
        await client.releaseMedia({ holder: "run:r", refIds: [ref!.id] });
        expect((await codeOf(client.stat({ refId: ref!.id }))).code).toBe(Code.NotFound);
        expect((await client.getUsage({})).workspaceUsedBytes).toBe(0n);
      } finally {
        await sut.close();
      }
    });

    for (const crashAt of ["unheld", "unindexed", "refunded"] as const) {
      it(`recovers from a crash at "${crashAt}" during the last release: the sweeper deletes the unheld object, nothing held`, async () => {
        const dataDir = makeTempDir("gc-crash");
        const env = await backend.freshEnv();
        const same: StorageBackendFixture = { freshEnv: async () => env, dispose: async () => {} };
        let armed = false;
        const crashPoint: CrashPoint = async (step) => {
          if (armed && step === crashAt) throw new Error(`simulated crash at ${step}`);
        };
        const first = await startRuntime(same, {}, { dataDir, overrides: { crashPoint } });
        const workspace = `ws-crash-${crashAt}`;
        let model: Model;
        let shared: string;
        try {
          ({ model, shared } = await setUp(first, workspace));
          await release(first, workspace, model, `upload:${shared}`);
          await release(first, workspace, model, "run:r2");
          armed = true;
          // r1 is the last holder of the shared object: its release stops at the crash point. r1 still
          // holds the other object, which must survive the recovery.
          expect((await codeOf(first.client("alice", workspace).releaseMedia({ holder: "run:r1", refIds: [shared] }))).code).toBeDefined();
          model.get(shared)?.holders.delete("run:r1");
        } finally {
          await first.close();
        }
        const restarted = await startRuntime(same, {}, { dataDir });
        try {
          // Another holder's object, taken after the restart, must survive every sweep.
          const survivor = await restarted.client("alice", workspace).upload(uploadStream({}, randomBytes(700)));
          model.set(survivor.ref!.id, { size: 700, holders: new Set([`upload:${survivor.ref!.id}`]) });
          // Two sweeps past every grace period: orphaned bytes go in the first, unregistered charges in the second.
          await restarted.runtime.sweep(Date.now() + 2 * HOUR);
          await restarted.runtime.sweep(Date.now() + 2 * HOUR);
          await expectMatches(restarted, workspace, model);
        } finally {
          await restarted.close();
          removeTempDir(dataDir);
        }
      });
    }
  });
}

describeGarbageCollection("files, refs and holds in SQLite", async () => {
  const root = makeTempDir("gc-files");
  let n = 0;
  return { freshEnv: async () => ({ STORAGE_DIR: `${root}/${n++}` }), dispose: async () => removeTempDir(root) };
});

describeGarbageCollection("S3 (fauxqs), holds and quotas in Redis", () => s3AndRedisBackend("gc"));
