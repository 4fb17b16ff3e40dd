import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RunState, type RunEvent } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { StreamAnnouncementKind } from "../../gen/mentatlab/v1/stream_pb.js";
import { main } from "../../services/cli/ctl/main.js";
import { CapturedIo } from "../../services/cli/ctl/testing.js";
import { buildWeb } from "../../web/build.js";
import { launchChromium, makeTempDir } from "../harness/index.js";
import { tick } from "./agents/ticker/tick.js";
import { meshClients, type MeshClients } from "./support/clients.js";
import { startDistributedMesh, type DistributedMesh } from "./support/distributed-mesh.js";
import { registerManifest } from "./support/examples.js";
import { failureOf, followRun } from "./support/runs.js";

const apiKey = "mlk_e2e_client_resume_0123456789";
const tickCount = 80;
const manifests = ["ticker", "tick-reader"].map((agent) => fileURLToPath(new URL(`./agents/${agent}/manifest.yaml`, import.meta.url)));

const flow = `
apiVersion: v1
kind: Flow
meta: { id: tests.ticker-reader, name: ticker and reader }
graph:
  nodes:
    - id: ticker
      agent: org.mentatlab.tests.ticker
      params: { count: ${tickCount}, interval_ms: 50 }
    - id: reader
      agent: org.mentatlab.tests.tick-reader
  edges:
    - from: ticker.ticks
      to: reader.ticks
`;

const allTicks = Array.from({ length: tickCount }, (_, i) => tick(i + 1)).join("");

/**
 * Every client the project ships follows the same run and stream through the gateway while the
 * gateway is SIGKILLed and restarted: mentatctl (runs watch, streams follow), the web UI in Chromium
 * (run events, followed stream), and the SDK agent reading the stream through its sidecar.
 */
describe("the project's clients through a gateway crash", () => {
  let mesh: DistributedMesh;
  let viaGateway: MeshClients;
  let browser: Browser;
  let page: Page;

  const ctl = async (args: string[]) => {
    const io = new CapturedIo({ MENTATLAB_URL: mesh.url, MENTATLAB_API_KEY: apiKey }, makeTempDir("client-resume-ctl"));
    const code = await main(["node", "mentatctl", ...args], io);
    return { code, stdout: io.stdoutText, stderr: io.stderrText };
  };

  beforeAll(async () => {
    const webDir = await buildWeb(join(makeTempDir("client-resume-web"), "dist"));
    mesh = await startDistributedMesh(apiKey, { extraEnv: { MENTATLAB_WEB_DIR: webDir } });
    viaGateway = meshClients(mesh);
    for (const manifest of manifests) await registerManifest(viaGateway, manifest);
    browser = await launchChromium();
    // A context of its own, so a second tab can share the signed-in key.
    page = await (await browser.newContext()).newPage();
    await page.goto(mesh.url);
    await page.getByLabel("API key").fill(apiKey);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator("#app").waitFor({ state: "visible" });
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await mesh?.close();
  });

  it("show every run event and every stream payload once, with no gap", async () => {
    // The reference: the services themselves, behind the gateway's back.
    const direct = { streams: meshClients({ url: mesh.urlOf("stream"), apiKey }), orchestrator: meshClients({ url: mesh.urlOf("orchestrator"), apiKey }) };
    const { run: submitted } = await viaGateway.orchestrator.submitFlow({ source: { source: { case: "text", value: flow } } });
    if (!submitted) throw new Error("submit returned no run");
    const runId = submitted.runId;
    let streamId = "";
    for await (const announcement of direct.streams.streams.watchStreams({ filter: { runId } })) {
      if (announcement.kind === StreamAnnouncementKind.AVAILABLE) {
        streamId = announcement.stream?.ref?.streamId ?? "";
        break;
      }
    }

    // The web UI watches the run and follows the stream; mentatctl does both too.
    // The run page and the streams page side by side, in two tabs sharing the signed-in key.
    await page.goto(`${mesh.url}/#/runs/${encodeURIComponent(runId)}`);
    const streamsPage = await page.context().newPage();
    await streamsPage.goto(`${mesh.url}/#/streams/${encodeURIComponent(streamId)}`);
    await expect.poll(() => streamsPage.locator("#follow-name").textContent()).toBe(streamId);
    const watching = ctl(["runs", "watch", runId]);
    const following = ctl(["streams", "follow", streamId]);

    // Crash the gateway once the stream is well under way, and bring it back a second later.
    for await (const event of direct.streams.streams.subscribe({ streamId }, { signal: AbortSignal.timeout(30_000) })) {
      if (event.seq >= 15n) break;
    }
    await mesh.killGateway();
    await sleep(1_000);
    await mesh.startGateway();

    const watched = await watching;
    const followed = await following;
    const { run, events } = await followRun(direct.orchestrator, runId);
    expect(run.state, failureOf(run)).toBe(RunState.SUCCEEDED);

    // mentatctl runs watch: every event once, in order, to the final one.
    expect(watched.code, watched.stderr).toBe(0);
    expect(watched.stderr).toMatch(new RegExp(`watch of run ${runId} after event \\d+ interrupted`));
    const visible = events.filter((event) => !isHeartbeat(event));
    expect([...watched.stdout.matchAll(/^#(\d+) /gm)].map((m) => BigInt(m[1]!))).toEqual(visible.map((event) => event.seq));

    // mentatctl streams follow: the payload bytes exactly.
    expect(followed.code, followed.stderr).toBe(0);
    expect(followed.stderr).toMatch(new RegExp(`stream ${streamId} after event \\d+ interrupted`));
    expect(followed.stdout).toBe(allTicks);

    // The SDK agent, reading through its sidecar, which subscribed through the gateway.
    expect(run.outputs["reader.text"]?.value).toEqual({ case: "text", value: allTicks });

    // The web UI: the followed text and one line per run event.
    await expect.poll(() => streamsPage.locator("#follow-text").textContent(), { timeout: 15_000 }).toBe(allTicks);
    await expect.poll(() => page.locator("#run-state").textContent(), { timeout: 15_000 }).toBe("succeeded");
    const lines = await page.locator("#run-events li").allTextContents();
    expect(lines.length).toBe(visible.length);
    expect(new Set(lines.filter((line) => line.includes("output"))).size).toBe(lines.filter((line) => line.includes("output")).length);
  }, 120_000);
});

function isHeartbeat(event: RunEvent): boolean {
  return event.event.case === "agent" && event.event.value.event.case === "heartbeat";
}
