import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RunState } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { StreamAnnouncementKind } from "../../gen/mentatlab/v1/stream_pb.js";
import { tick } from "./agents/ticker/tick.js";
import { meshClients, type MeshClients } from "./support/clients.js";
import { startDistributedMesh, type DistributedMesh } from "./support/distributed-mesh.js";
import { registerManifest } from "./support/examples.js";
import { failureOf, followRun, oneNodeFlow } from "./support/runs.js";

const ticker = fileURLToPath(new URL("./agents/ticker/manifest.yaml", import.meta.url));

const flow = oneNodeFlow("ticker", { id: "ticker", agent: "org.mentatlab.tests.ticker", params: { count: 60, interval_ms: 40 } });

describe("a sidecar's stream relay through a gateway process crash", () => {
  let mesh: DistributedMesh;
  let viaGateway: MeshClients;

  beforeAll(async () => {
    mesh = await startDistributedMesh("mlk_e2e_gateway_crash_0123456789");
    viaGateway = meshClients(mesh);
    await registerManifest(viaGateway, ticker);
  });
  afterAll(async () => {
    await mesh?.close();
  });

  it("loses and duplicates nothing when the gateway is SIGKILLed and restarted mid-stream", async () => {
    // The client watches from behind the gateway's back, straight at the services, so it sees the whole stream.
    const streams = meshClients({ url: mesh.urlOf("stream"), apiKey: mesh.apiKey });
    const orchestrator = meshClients({ url: mesh.urlOf("orchestrator"), apiKey: mesh.apiKey });
    const { run: submitted } = await viaGateway.orchestrator.submitFlow({ source: { source: { case: "text", value: flow } } });
    if (!submitted) throw new Error("submit returned no run");

    let streamId = "";
    for await (const announcement of streams.streams.watchStreams({ filter: { runId: submitted.runId } })) {
      if (announcement.kind === StreamAnnouncementKind.AVAILABLE) {
        streamId = announcement.stream?.ref?.streamId ?? "";
        break;
      }
    }
    const received: string[] = [];
    let outcome = "";
    let crashed = false;
    // A relay that never resumes must fail this test quickly, not hang it.
    for await (const event of streams.streams.subscribe({ streamId }, { signal: AbortSignal.timeout(30_000) })) {
      if (event.event.case === "data") {
        received.push(Buffer.from(event.event.value.data).toString("utf8"));
        if (received.length === 10 && !crashed) {
          crashed = true;
          await mesh.killGateway();
          await sleep(500);
          await mesh.startGateway();
        }
      }
      if (event.event.case === "end" || event.event.case === "error") {
        outcome = event.event.case;
        break;
      }
    }
    expect(crashed).toBe(true);
    expect(outcome).toBe("end");
    expect(received).toEqual(Array.from({ length: 60 }, (_, i) => tick(i + 1)));

    const { run, events } = await followRun(orchestrator, submitted.runId);
    expect(run.state, failureOf(run)).toBe(RunState.SUCCEEDED);
    // The sidecar reports how often its relay had to reconnect: the crash really cut its Publish call.
    const reconnects = events.flatMap((event) =>
      event.event.case === "agent" && event.event.value.event.case === "metric" && event.event.value.event.value.name === "stream_relay_reconnects"
        ? [event.event.value.event.value.value]
        : [],
    );
    expect(reconnects.length).toBe(1);
    expect(reconnects[0]).toBeGreaterThanOrEqual(1);
    expect(run.outputs["ticker.count"]?.value).toEqual({ case: "json", value: expect.objectContaining({ kind: { case: "numberValue", value: 60 } }) });
  });
});
