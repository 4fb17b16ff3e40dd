import { createHash, randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RunState, type RunEvent } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { UploadHeaderSchema, type UploadRequest } from "../../gen/mentatlab/v1/storage_pb.js";
import { testAgentManifest } from "../../services/orchestrator/testing.js";
import { freePort, makeTempDir, portOpen, removeTempDir, spawnManaged, waitUntilReady, type ManagedProcess } from "../harness/index.js";
import { meshClients, type MeshClients } from "./support/clients.js";
import { failureOf, followRun, oneNodeFlow } from "./support/runs.js";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const KiB = 1024;
const API_KEY = "mlk_e2e_restart_0123456789";

const sleepFlow = (ms: number) => oneNodeFlow("sleep", { id: "nap", agent: "org.mentatlab.tests.sleep", params: { ms } });

async function* uploadStream(bytes: Uint8Array): AsyncGenerator<UploadRequest> {
  yield { $typeName: "mentatlab.v1.UploadRequest", part: { case: "header", value: create(UploadHeaderSchema, { sizeBytes: BigInt(bytes.length) }) } };
  for (let at = 0; at < bytes.length; at += 32 * KiB) {
    yield { $typeName: "mentatlab.v1.UploadRequest", part: { case: "chunk", value: bytes.subarray(at, at + 32 * KiB) } };
  }
}

async function downloaded(clients: MeshClients, refId: string): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const msg of clients.storage.download({ refId })) if (msg.part.case === "chunk") parts.push(msg.part.value.data);
  return Buffer.concat(parts);
}

/** Events of a run after `afterSeq`, up to and including its final state. */
async function watchedFrom(clients: MeshClients, runId: string, afterSeq: bigint): Promise<RunEvent[]> {
  const events: RunEvent[] = [];
  for await (const event of clients.orchestrator.watchRun({ runId, afterSeq }, { signal: AbortSignal.timeout(30_000) })) {
    events.push(event);
    if (event.event.case === "runState" && [RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED].includes(event.event.value.state)) break;
  }
  return events;
}

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/**
 * The embedded default as `mentatlab serve embedded` runs it, with no Redis: SIGKILLed and started
 * again on the same data dir, it must still know every kind of state its clients created.
 */
describe("the embedded default across kill -9 and a restart", () => {
  let dataDir: string;
  let port: number;
  let server: ManagedProcess | undefined;
  let clients: MeshClients;

  const start = async () => {
    // Node itself with tsx as a loader, not a wrapper: the SIGKILL must hit the server.
    server = spawnManaged(process.execPath, ["--import", "tsx", `${repo}services/cli/main.ts`, "serve", "embedded"], {
      cwd: repo,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        PORT: String(port),
        MENTATLAB_DATA_DIR: dataDir,
        MENTATLAB_API_KEYS: `${API_KEY}=rita@ws-restart:admin`,
        STORAGE_USER_QUOTA_BYTES: String(512 * KiB),
        // A crashed process's run leases lapse within a second, so adoption is quick to observe.
        ORCHESTRATOR_LEASE_TTL_MS: "1000",
        ORCHESTRATOR_RECOVERY_INTERVAL_MS: "250",
      },
    });
    const proc = server;
    await waitUntilReady("mentatlab serve embedded", proc, () => portOpen(port));
  };

  beforeAll(async () => {
    dataDir = makeTempDir("e2e-restart");
    port = await freePort();
    clients = meshClients({ url: `http://127.0.0.1:${port}`, apiKey: API_KEY });
    await start();
  });
  afterAll(async () => {
    await server?.terminate("SIGTERM", 3_000);
    removeTempDir(dataDir);
  });

  it("keeps quota usage, refs, runs and their events, agents and resumable uploads", async () => {
    // State of every kind, created as a client would.
    const stored = randomBytes(100 * KiB);
    const { ref } = await clients.storage.upload(uploadStream(stored));
    if (!ref) throw new Error("upload returned no ref");
    const pending = randomBytes(300 * KiB);
    const { uploadId } = await clients.storage.createUpload({ header: { sizeBytes: BigInt(pending.length) } });
    await clients.storage.uploadChunk({ uploadId, offset: 0n, data: pending.subarray(0, 120 * KiB) });
    const usageBefore = await clients.storage.getUsage({});
    expect(usageBefore.userUsedBytes).toBe(BigInt(stored.length + pending.length));

    await clients.registry.registerAgent({
      source: { source: { case: "text", value: testAgentManifest("org.mentatlab.tests.sleep", "sleep.mjs", "outputs: [{name: text, type: text}]") } },
    });
    const { run: finished } = await clients.orchestrator.submitFlow({ source: { source: { case: "text", value: sleepFlow(10) } } });
    if (!finished) throw new Error("submit returned no run");
    const before = await followRun(clients, finished.runId);
    expect(before.run.state, failureOf(before.run)).toBe(RunState.SUCCEEDED);
    // A run still going when the process dies.
    const { run: interrupted } = await clients.orchestrator.submitFlow({ source: { source: { case: "text", value: sleepFlow(1500) } } });
    if (!interrupted) throw new Error("submit returned no run");
    const seenLive: RunEvent[] = [];
    for await (const event of clients.orchestrator.watchRun({ runId: interrupted.runId, afterSeq: 0n })) {
      seenLive.push(event);
      if (event.event.case === "agent") break;
    }

    expect(await server?.terminate("SIGKILL")).toMatchObject({ signal: "SIGKILL" });
    await start();

    // Quota: what was charged and held is still counted, so the restart grants no fresh quota.
    expect(await clients.storage.getUsage({})).toMatchObject({
      userUsedBytes: usageBefore.userUsedBytes,
      workspaceObjectCount: usageBefore.workspaceObjectCount,
    });
    const overQuota = await clients.storage.upload(uploadStream(randomBytes(200 * KiB))).catch((err: unknown) => ConnectError.from(err));
    expect(overQuota).toMatchObject({ code: Code.ResourceExhausted });

    // The ref is served, and the same bytes deduplicate against it rather than being charged again.
    expect((await clients.storage.stat({ refId: ref.id })).ref).toMatchObject({ sha256: sha256(stored), sizeBytes: BigInt(stored.length) });
    expect(sha256(await downloaded(clients, ref.id))).toBe(sha256(stored));
    expect((await clients.storage.upload(uploadStream(stored))).deduplicated).toBe(true);

    // The finished run and its events, with the same sequence numbers; a watch resumes mid-log.
    const after = await clients.orchestrator.getRun({ runId: finished.runId });
    expect(after.run?.state).toBe(RunState.SUCCEEDED);
    const replayed = await watchedFrom(clients, finished.runId, 0n);
    expect(replayed.map((e) => e.seq)).toEqual(before.events.map((e) => e.seq));
    expect(replayed).toEqual(before.events);
    const tail = await watchedFrom(clients, finished.runId, 2n);
    expect(tail.map((e) => e.seq)).toEqual(before.events.slice(2).map((e) => e.seq));
    // The interrupted run is adopted and finished; its log continues where the dead process left it.
    const lastSeen = seenLive.at(-1)?.seq ?? 0n;
    const continued = await watchedFrom(clients, interrupted.runId, lastSeen);
    expect(continued[0]?.seq).toBe(lastSeen + 1n);
    expect(continued.map((e) => e.seq)).toEqual(continued.map((_, i) => lastSeen + 1n + BigInt(i)));
    const resumed = await clients.orchestrator.getRun({ runId: interrupted.runId });
    expect(resumed.run?.state, resumed.run && failureOf(resumed.run)).toBe(RunState.SUCCEEDED);
    expect((await clients.orchestrator.listRuns({})).runs.map((r) => r.runId)).toEqual([interrupted.runId, finished.runId]);

    // The agent is still registered.
    expect((await clients.registry.listAgents({})).agents.map((a) => a.id)).toContain("org.mentatlab.tests.sleep");

    // The resumable upload continues from its committed offset and completes.
    expect((await clients.storage.getUploadStatus({ uploadId })).committedOffset).toBe(BigInt(120 * KiB));
    await clients.storage.uploadChunk({ uploadId, offset: BigInt(120 * KiB), data: pending.subarray(120 * KiB) });
    const completed = await clients.storage.completeUpload({ uploadId, sha256: sha256(pending) });
    expect(sha256(await downloaded(clients, completed.ref!.id))).toBe(sha256(pending));
    expect(await clients.storage.getUsage({})).toMatchObject({ userUsedBytes: BigInt(stored.length + pending.length), workspaceObjectCount: 2n });
  }, 120_000);
});
