import { create } from "@bufbuild/protobuf";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AgentEventSchema } from "../../gen/mentatlab/v1/common_pb.js";
import {
  CacheMode,
  NodeRunSchema,
  NodeState,
  type ReportNodeEventsRequest,
  ReuseKind,
  ReportNodeEventsRequestSchema,
  type Run,
  type RunEvent,
  RunEventSchema,
  RunSchema,
  RunState,
} from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { newRunId } from "./run-id.js";
import type { RunStore } from "./run-store.js";

export interface RunStoreBackend {
  /** Built to keep finished runs briefly (about a second) or few of them (one), so retention can be observed. */
  readonly store: RunStore;
  /** A second store on the same data, as another replica would open it (may be the same instance in memory). */
  peer(): Promise<RunStore>;
  cleanup(): Promise<void>;
}

/** The behaviour every RunStore backend must show; call once per backend from its test file. */
export function describeRunStoreConformance(name: string, backend: () => Promise<RunStoreBackend>): void {
  describe(`RunStore conformance: ${name}`, () => {
    let b: RunStoreBackend;
    let store: RunStore;
    beforeEach(async () => {
      b = await backend();
      store = b.store;
    });
    afterEach(async () => {
      await b.cleanup();
    });

    let clock = Date.now();
    const newRun = (workspace = "ws-a", state = RunState.PENDING): Run =>
      create(RunSchema, { runId: newRunId(clock++), workspace, owner: "alice", state, lastEventSeq: 1n, labels: { k: "v" } });
    const event = (run: Run, seq: bigint, state = RunState.RUNNING): RunEvent =>
      create(RunEventSchema, { seq, runId: run.runId, event: { case: "runState", value: { state } } });
    const created = async (run = newRun()) => {
      await store.create(run, [event(run, 1n, RunState.PENDING)], "");
      return run;
    };

    it("stores a run with its first events", async () => {
      const run = await created();
      expect(await store.get(run.runId)).toEqual(run);
      expect((await store.events(run.runId, 0n, 10)).map((e) => e.seq)).toEqual([1n]);
      expect(await store.get("run_missing")).toBeUndefined();
    });

    it("keeps a retry's link to its original and where each reused node's outputs came from", async () => {
      const original = await created();
      const retry = newRun();
      retry.retryOf = original.runId;
      retry.cache = CacheMode.READ;
      retry.nodes = [create(NodeRunSchema, { nodeId: "a", state: NodeState.SUCCEEDED, reused: { kind: ReuseKind.RETRY, runId: original.runId, nodeId: "a" } })];
      await store.create(retry, [event(retry, 1n, RunState.PENDING)], "");
      const peer = await b.peer();
      expect(await peer.get(retry.runId)).toEqual(retry);
    });

    it("keeps a mapped node's items and the item index of its events, on every replica", async () => {
      const run = await created();
      const mapped = create(NodeRunSchema, {
        nodeId: "each",
        state: NodeState.RUNNING,
        attempt: 3,
        map: {
          total: 2,
          items: [
            { index: 0, state: NodeState.SUCCEEDED, attempt: 1, tries: 1, outputs: { text: { value: { case: "text", value: "a!" } } } },
            { index: 1, state: NodeState.RETRYING, attempt: 3, tries: 2, error: "busy" },
          ],
        },
      });
      const snapshot = create(RunSchema, { ...run, nodes: [mapped], lastEventSeq: 3n });
      const itemEvents = [
        create(RunEventSchema, {
          seq: 2n,
          runId: run.runId,
          nodeId: "each",
          event: { case: "mapItem", value: { nodeId: "each", index: 1, state: NodeState.RETRYING, attempt: 3, failed: 0, succeeded: 1, total: 2 } },
        }),
        create(RunEventSchema, { seq: 3n, runId: run.runId, nodeId: "each", itemIndex: 0, event: { case: "agent", value: create(AgentEventSchema) } }),
      ];
      expect(await store.acquireLease(run.runId, "owner-1", 5000)).toBe(true);
      expect(await store.append(run.runId, "owner-1", itemEvents, snapshot)).toBe(true);
      const peer = await b.peer();
      expect(await peer.get(run.runId)).toEqual(snapshot);
      expect(await peer.events(run.runId, 1n, 10)).toEqual(itemEvents);
    });

    it("keeps node cache entries per workspace until their TTL, the newest put winning, on every replica", async () => {
      const entry = (runId: string) =>
        create(NodeRunSchema, {
          nodeId: "a",
          outputs: { text: { value: { case: "text", value: runId } } },
          reused: { kind: ReuseKind.CACHE, runId, nodeId: "a" },
        });
      expect(await store.cacheGet("ws-a", "k1")).toBeUndefined();
      await store.cachePut("ws-a", "k1", entry("run_1"), 5000);
      await store.cachePut("ws-a", "k1", entry("run_2"), 5000);
      await store.cachePut("ws-a", "short", entry("run_3"), 150);
      const peer = await b.peer();
      expect(await peer.cacheGet("ws-a", "k1")).toEqual(entry("run_2"));
      expect(await peer.cacheGet("ws-b", "k1")).toBeUndefined();
      expect(await peer.cacheGet("ws-a", "short")).toEqual(entry("run_3"));
      await new Promise((r) => setTimeout(r, 250));
      expect(await store.cacheGet("ws-a", "short")).toBeUndefined();
      expect(await store.cacheGet("ws-a", "k1")).toEqual(entry("run_2"));
    });

    it("answers a repeated idempotency key with the first run, per workspace", async () => {
      const first = newRun();
      expect((await store.create(first, [event(first, 1n)], "req-1")).created).toBe(true);
      const again = await store.create(newRun(), [], "req-1");
      expect(again.created).toBe(false);
      expect(again.run.runId).toBe(first.runId);
      expect((await store.create(newRun("ws-b"), [], "req-1")).created).toBe(true);
    });

    it("appends only for the lease holder, only right after the last seq", async () => {
      const run = await created();
      expect(await store.append(run.runId, "me", [event(run, 2n)], run)).toBe(false);
      expect(await store.acquireLease(run.runId, "me", 5000)).toBe(true);
      expect(await store.append(run.runId, "me", [event(run, 3n)], run)).toBe(false);
      const next = { ...run, state: RunState.RUNNING, lastEventSeq: 3n };
      expect(await store.append(run.runId, "me", [event(run, 2n), event(run, 3n)], next)).toBe(true);
      expect((await store.get(run.runId))?.state).toBe(RunState.RUNNING);
      expect((await store.events(run.runId, 1n, 1)).map((e) => e.seq)).toEqual([2n]);
      expect((await store.events(run.runId, 0n, 100)).map((e) => e.seq)).toEqual([1n, 2n, 3n]);
      const peer = await b.peer();
      expect(await peer.append(run.runId, "other", [event(run, 4n)], next)).toBe(false);
    });

    it("gives a lease to one owner at a time until it expires or is released", async () => {
      const run = await created();
      const peer = await b.peer();
      expect(await store.acquireLease(run.runId, "a", 150)).toBe(true);
      expect(await peer.acquireLease(run.runId, "b", 150)).toBe(false);
      expect(await store.acquireLease(run.runId, "a", 150)).toBe(true);
      await new Promise((r) => setTimeout(r, 250));
      expect(await peer.acquireLease(run.runId, "b", 5000)).toBe(true);
      expect(await store.append(run.runId, "a", [event(run, 2n)], run)).toBe(false);
      await store.releaseLease(run.runId, "a");
      expect(await store.acquireLease(run.runId, "a", 5000)).toBe(false);
      await peer.releaseLease(run.runId, "b");
      expect(await store.acquireLease(run.runId, "a", 5000)).toBe(true);
      expect(await store.acquireLease("run_missing", "a", 5000)).toBe(false);
    });

    it("notifies watchers on any replica after an append", async () => {
      const run = await created();
      const peer = await b.peer();
      let calls = 0;
      const notified = new Promise<void>((resolve) => {
        const stop = peer.watch(run.runId, () => {
          calls++;
          stop();
          resolve();
        });
      });
      await store.acquireLease(run.runId, "me", 5000);
      await store.append(run.runId, "me", [event(run, 2n)], run);
      await notified;
      expect(calls).toBe(1);
    });

    it("lists a workspace's runs newest first, filtered by state, page by page", async () => {
      const runs = [await created(newRun()), await created(newRun()), await created(newRun()), await created(newRun("ws-other"))];
      const [r0, r1, r2] = runs as [Run, Run, Run];
      await store.acquireLease(r1.runId, "me", 5000);
      await store.append(r1.runId, "me", [event(r1, 2n, RunState.SUCCEEDED)], { ...r1, state: RunState.SUCCEEDED });
      const first = await store.list("ws-a", [], 2, "");
      expect(first.runs.map((r) => r.runId)).toEqual([r2.runId, r1.runId]);
      const second = await store.list("ws-a", [], 2, first.nextAfter);
      expect(second.runs.map((r) => r.runId)).toEqual([r0.runId]);
      expect(second.nextAfter).toBe("");
      expect((await store.list("ws-a", [RunState.SUCCEEDED], 10, "")).runs.map((r) => r.runId)).toEqual([r1.runId]);
      expect((await store.list("ws-a", [RunState.PENDING], 1, "")).nextAfter).toBe(r2.runId);
    });

    it("forwards sidecar reports to every replica", async () => {
      const peer = await b.peer();
      const heard = new Promise<ReportNodeEventsRequest>((resolve) => peer.onReport(resolve));
      await store.forwardReport(
        create(ReportNodeEventsRequestSchema, {
          runId: "run_x",
          nodeId: "n",
          attempt: 2,
          events: [create(AgentEventSchema, { event: { case: "heartbeat", value: {} } })],
        }),
      );
      const report = await heard;
      expect([report.runId, report.nodeId, report.attempt, report.events[0]?.event.case]).toEqual(["run_x", "n", 2, "heartbeat"]);
    });

    it("lets finished runs go after the retention limit, keeping unfinished ones", async () => {
      const finish = async (run: Run) => {
        await store.acquireLease(run.runId, "me", 5000);
        await store.append(run.runId, "me", [event(run, 2n, RunState.SUCCEEDED)], { ...run, state: RunState.SUCCEEDED });
      };
      const open = await created();
      const old = newRun();
      await store.create(old, [event(old, 1n, RunState.PENDING)], "req-old");
      await finish(old);
      await new Promise((r) => setTimeout(r, 1100));
      await finish(await created());
      expect(await store.get(old.runId)).toBeUndefined();
      expect(await store.events(old.runId, 0n, 10)).toEqual([]);
      expect((await store.list("ws-a", [], 10, "")).runs.map((r) => r.runId)).not.toContain(old.runId);
      expect((await store.create(newRun(), [], "req-old")).created).toBe(true);
      expect(await store.get(open.runId)).toBeDefined();
    });

    it("tracks unfinished runs and cancel requests", async () => {
      const run = await created();
      expect(await store.unfinished()).toContain(run.runId);
      const peer = await b.peer();
      const heard = new Promise<string>((resolve) => peer.onCancelRequested(resolve));
      await store.requestCancel(run.runId, "user asked");
      expect(await heard).toBe(run.runId);
      expect(await peer.cancelRequest(run.runId)).toBe("user asked");
      await store.acquireLease(run.runId, "me", 5000);
      await store.append(run.runId, "me", [event(run, 2n, RunState.CANCELLED)], { ...run, state: RunState.CANCELLED });
      expect(await store.unfinished()).not.toContain(run.runId);
    });
  });
}
