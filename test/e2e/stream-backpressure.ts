import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { type JsonValue, toJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Run, RunState } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { bulkChunk } from "./agents/bulk-streamer/chunks.js";
import { meshClients, type MeshClients, type MeshUnderTest } from "./support/clients.js";
import { registerManifest } from "./support/examples.js";
import { failureOf, followRun } from "./support/runs.js";

// A real producer agent streaming as fast as it can to a real downstream agent that reads slowly,
// through their sidecars and a mesh, under each backpressure policy of the edge.

const MEBIBYTES = 40;
const TOTAL = MEBIBYTES * 1024 * 1024;
const WINDOW = 1024 * 1024;
// What the transports between the stream service and the reading agent hold beyond its window: the
// HTTP/2 stream windows and socket buffers of gateway -> sidecar and sidecar -> agent.
const IN_FLIGHT = 16 * 1024 * 1024;
// The slow reader: 64 KiB every 8 ms, about 8 MiB/s at best, far slower than the producer alone.
const READER_DELAY_MS = 8;
const manifests = ["bulk-streamer", "slow-reader"].map((agent) => fileURLToPath(new URL(`./agents/${agent}/manifest.yaml`, import.meta.url)));

function flow(edge: string): string {
  return `
apiVersion: v1
kind: Flow
meta: { id: tests.backpressure, name: slow reader }
graph:
  nodes:
    - { id: producer, agent: org.mentatlab.tests.bulk-streamer, params: { mebibytes: ${MEBIBYTES} } }
    - { id: reader, agent: org.mentatlab.tests.slow-reader, params: { delay_ms: ${READER_DELAY_MS} } }
  edges:
    - { from: producer.bytes, to: reader.bytes${edge} }
`;
}

function expectedSha256(): string {
  const hash = createHash("sha256");
  for (let n = 0; n < MEBIBYTES * 16; n++) hash.update(bulkChunk(n));
  return hash.digest("hex");
}

function jsonOutput(run: Run, key: string): Record<string, JsonValue> {
  const value = run.outputs[key]?.value;
  if (value?.case !== "json") throw new Error(`run has no json output ${key}: ${failureOf(run)}`);
  return toJson(ValueSchema, value.value) as Record<string, JsonValue>;
}

/**
 * The environment `start` must give the mesh: a lag budget as small as the window, so an ordinary
 * subscriber would be cut off where `block` must hold the producer instead.
 */
export const backpressureEnv: Readonly<Record<string, string>> = { STREAM_SUBSCRIBER_MAX_LAG_BYTES: String(WINDOW) };

/** The three policies on the mesh `start` makes (with `backpressureEnv`). */
export function describeStreamBackpressure(name: string, start: () => Promise<MeshUnderTest>): void {
  describe(`stream edge backpressure with a slow downstream agent (${name})`, () => {
    let mesh: MeshUnderTest;
    let clients: MeshClients;

    beforeAll(async () => {
      mesh = await start();
      clients = meshClients(mesh);
      for (const manifest of manifests) await registerManifest(clients, manifest);
    }, 60_000);
    afterAll(async () => {
      await mesh?.close();
    });

    async function runFlow(edge: string): Promise<Run> {
      const { run } = await clients.orchestrator.submitFlow({ source: { source: { case: "text", value: flow(edge) } } });
      return (await followRun(clients, run?.runId ?? "")).run;
    }

    it("block: the producer is held to the reader's pace, and every byte arrives once", async () => {
      const run = await runFlow(`, backpressure: block, backpressure_window_bytes: ${WINDOW}`);
      expect(run.state, failureOf(run)).toBe(RunState.SUCCEEDED);
      const report = jsonOutput(run, "producer.report");
      const received = jsonOutput(run, "reader.received");
      expect(received.bytes).toBe(TOTAL);
      expect(received.sha256).toBe(expectedSha256());

      // When every chunk was acknowledged, the reader was at most a window (plus what the transports
      // hold) behind: the producer waited for it, and the backlog ahead of the reader stayed bounded.
      const finishedAtMs = Number(report.finished_at_ms);
      const timeline = received.timeline as [number, number][];
      const readByThen = Math.max(0, ...timeline.filter(([at]) => at <= finishedAtMs).map(([, bytes]) => bytes));
      const what = `producer finished at ${finishedAtMs}, reader had ${readByThen} of ${TOTAL} bytes; reader timeline ${JSON.stringify(timeline)}`;
      expect(TOTAL - readByThen, what).toBeLessThanOrEqual(WINDOW + IN_FLIGHT);
      // The reader needed seconds for what was left beyond that: the producer's publishing took as long.
      // (From its first MiB on, at no more than 64 KiB per READER_DELAY_MS.)
      const [firstAt = 0, firstBytes = 0] = timeline[0] ?? [];
      const fastestReadMs = ((TOTAL - WINDOW - IN_FLIGHT - firstBytes) / 65_536) * READER_DELAY_MS;
      expect(finishedAtMs - firstAt, what).toBeGreaterThanOrEqual(fastestReadMs);
    }, 120_000);

    it("fail: the stream fails with stream_error once the reader is a window behind, and so does the reader's attempt", async () => {
      const run = await runFlow(`, backpressure: fail, backpressure_window_bytes: ${WINDOW}`);
      expect(run.state).toBe(RunState.FAILED);
      const reader = run.nodes.find((node) => node.nodeId === "reader");
      expect(reader?.error).toMatch(/downstream agent "reader" fell \d+ bytes behind stream .*1048576-byte window.*backpressure: fail/);
      const producer = run.nodes.find((node) => node.nodeId === "producer");
      expect(producer?.error).toMatch(/downstream agent "reader" fell/);
    }, 120_000);
  });
}
