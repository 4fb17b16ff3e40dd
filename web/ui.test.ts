import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jsonPinValue } from "../agent-contract/pin-values.js";
import { fileURLToPath } from "node:url";
import { create } from "@bufbuild/protobuf";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import type { Browser, Page } from "playwright-core";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PinType } from "../gen/mentatlab/v1/common_pb.js";
import { OrchestratorService } from "../gen/mentatlab/v1/orchestrator_pb.js";
import { AgentRegistryService } from "../gen/mentatlab/v1/registry_pb.js";
import { StorageService, UploadRequestSchema } from "../gen/mentatlab/v1/storage_pb.js";
import { StreamService, StreamState } from "../gen/mentatlab/v1/stream_pb.js";
import { startEmbedded, type EmbeddedMesh } from "../services/mesh/embedded.js";
import { wavHeader } from "../services/shared/wav.js";
import { ffmpegFromTestSources, launchChromium } from "../test/harness/index.js";
import { buildWeb } from "./build.js";
import { KEEP_BEHIND_SECONDS, TRIM_STEP_SECONDS } from "./src/live-player.js";

const shoutAgentDir = fileURLToPath(new URL("../services/cli/ctl/testdata", import.meta.url));
const examplesDir = fileURLToPath(new URL("../examples/agents", import.meta.url));
const ledgerAgent = fileURLToPath(new URL("../test/agents/ledger.mjs", import.meta.url));
const mapItemAgent = fileURLToPath(new URL("../test/agents/map-item.mjs", import.meta.url));
const showcaseAgentDir = fileURLToPath(new URL("./testdata", import.meta.url));
/** Screenshots kept after the run (git-ignored), to look at what the pages looked like. */
const artifacts = fileURLToPath(new URL("../test-artifacts/web", import.meta.url));
/** Every response of 400 or more and every console error the pages produced, for the final check. */
const pageFaults: string[] = [];

let work: string;
let mesh: EmbeddedMesh;
let browser: Browser;
let page: Page;
let png: string;
/** The PNG the user dropped into the media library. */
let swatchRefId = "";
/** The run that succeeded with every kind of output, shown again at phone width. */
let showcaseRunId = "";
/** The stream the orchestrator opened for that run's notes output. */
let notesStreamId = "";

/** The describe → shout flow: an image and a caption in, every kind of preview out, a text edge between the nodes. */
const showcaseFlow = (params: { hold_ms?: number } = {}) =>
  [
    "apiVersion: v1",
    "kind: Flow",
    "meta: { id: web.showcase, name: Showcase }",
    "graph:",
    "  nodes:",
    "    - id: describe",
    "      agent: org.mentatlab.test.showcase",
    ...(Object.keys(params).length > 0 ? [`      params: ${JSON.stringify(params)}`] : []),
    "    - id: shout",
    "      agent: org.mentatlab.test.shout",
    "  edges:",
    "    - { from: describe.caption, to: shout.text }",
  ].join("\n");

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "mentatlab-web-"));
  mkdirSync(artifacts, { recursive: true });
  const dist = await buildWeb(join(work, "dist"));
  mesh = await startEmbedded({ port: 0, dataDir: join(work, "data"), env: { MENTATLAB_WEB_DIR: dist } });
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  page.on("response", (response) => {
    if (response.status() >= 400) pageFaults.push(`${response.status()} ${response.url()}`);
  });
  page.on("console", (message) => {
    if (message.type() === "error") pageFaults.push(`console: ${message.text()}`);
  });
  page.on("pageerror", (error) => pageFaults.push(`page error: ${error.message}`));
  png = join(work, "swatch.png");
  await sharp({ create: { width: 160, height: 90, channels: 3, background: { r: 52, g: 81, b: 178 } } })
    .png()
    .toFile(png);
  await registerAgents();
});

afterAll(async () => {
  await browser?.close();
  await mesh?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

function clients() {
  const bearer: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${mesh.adminKey}`);
    return next(req);
  };
  const transport = createConnectTransport({ baseUrl: mesh.url, httpVersion: "1.1", interceptors: [bearer] });
  return {
    registry: createClient(AgentRegistryService, transport),
    stream: createClient(StreamService, transport),
    orchestrator: createClient(OrchestratorService, transport),
    storage: createClient(StorageService, transport),
  };
}

async function registerAgents(): Promise<void> {
  const manifests = [
    [
      "id: org.mentatlab.test.shout",
      "version: 1.0.0",
      "description: upper-cases its input",
      `command: [${JSON.stringify(process.execPath)}, shout-agent.mjs]`,
      `working_dir: ${JSON.stringify(shoutAgentDir)}`,
      "inputs: [{ name: text, type: text, required: true }]",
      "outputs: [{ name: text, type: text }]",
    ],
    [
      "id: org.mentatlab.test.ledger",
      "version: 1.0.0",
      "description: appends its node id to a file, may fail the first time",
      "cacheable: true",
      `command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(ledgerAgent)}]`,
      "inputs: [{ name: text, type: text }]",
      "outputs: [{ name: text, type: text }]",
    ],
    [
      "id: org.mentatlab.test.map-item",
      "version: 1.0.0",
      "description: handles one item of a mapped node",
      `command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(mapItemAgent)}]`,
      "inputs: [{ name: text, type: text }]",
      "outputs: [{ name: text, type: text }]",
    ],
    [
      "id: org.mentatlab.test.showcase",
      "version: 1.0.0",
      "description: hands back its image with a tone, a caption and facts",
      `command: [${JSON.stringify(process.execPath)}, showcase-agent.mjs]`,
      `working_dir: ${JSON.stringify(showcaseAgentDir)}`,
      `env: { SHOWCASE_OUT_DIR: ${JSON.stringify(work)} }`,
      "inputs:",
      "  - { name: image, type: image, required: true, description: A picture to describe., media: { acceptedMimeTypes: [image/png] } }",
      "  - { name: caption, type: text, required: true }",
      "outputs:",
      "  - { name: image, type: image, media: { acceptedMimeTypes: [image/png] } }",
      "  - { name: caption, type: text }",
      "  - { name: facts, type: json }",
      "  - { name: tone, type: audio, media: { acceptedMimeTypes: [audio/wav, audio/x-wav, audio/wave] } }",
      "  - { name: notes, type: stream }",
      "capabilities: [streaming]",
    ],
    [
      "id: org.mentatlab.test.live-outputs",
      "version: 1.0.0",
      "description: keeps its stream outputs open for a minute, for a test to publish into",
      `command: [${JSON.stringify(process.execPath)}, -e, ${JSON.stringify("setTimeout(() => console.log(JSON.stringify({ result: {} })), 60000)")}]`,
      "inputs: []",
      "outputs:",
      "  - { name: tokens, type: stream, media: { acceptedMimeTypes: [text/plain] } }",
      "  - { name: sound, type: stream, media: { acceptedMimeTypes: [audio/wav] } }",
      "capabilities: [streaming]",
    ],
  ];
  for (const lines of manifests) await clients().registry.registerAgent({ source: { source: { case: "text", value: lines.join("\n") } } });
  // The example flow offered in the picker needs its agents' manifests; registering runs nothing.
  for (const agent of ["image-thumbnail", "image-describe"]) {
    await clients().registry.registerAgent({ source: { source: { case: "text", value: readFileSync(join(examplesDir, agent, "manifest.yaml"), "utf8") } } });
  }
}

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

describe("web UI in a real browser", () => {
  it("shows only the sign-in form before sign-in, with the page's icon", async () => {
    await page.goto(mesh.url);
    await page.getByLabel("API key").waitFor({ state: "visible" });
    // Headless Chromium does not fetch icons itself: fetch the one the page names, and the path browsers try.
    const iconHref = await page.locator('link[rel="icon"]').evaluate((link: HTMLLinkElement) => link.href);
    for (const url of [iconHref, `${mesh.url}/favicon.ico`]) {
      const icon = await page.evaluate(async (href) => {
        const response = await fetch(href);
        return { status: response.status, type: response.headers.get("content-type"), bytes: (await response.arrayBuffer()).byteLength };
      }, url);
      expect(icon, url).toEqual({ status: 200, type: "image/x-icon", bytes: expect.any(Number) });
      expect(icon.bytes).toBeGreaterThan(0);
    }
    expect(await page.getByRole("navigation", { name: "Sections" }).isVisible()).toBe(false);
    expect(await page.getByRole("button", { name: "Sign out" }).isVisible()).toBe(false);
    expect(await page.locator("#app").isVisible()).toBe(false);
  });

  it("refuses a wrong key and keeps the app hidden", async () => {
    await page.getByLabel("API key").fill("mlk_wrong_key_0000000000");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => page.locator("#status").textContent()).toMatch(/Could not sign in: Unauthenticated/);
    expect(await page.locator("#app").isHidden()).toBe(true);
    // The refused key's 401 is this test's point, not a fault of the page.
    pageFaults.length = 0;
  });

  it("signs in to the runs list, then uploads by drag and drop and by file choice into the media library", async () => {
    await page.getByLabel("API key").fill(mesh.adminKey ?? "");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Runs" }).waitFor({ state: "visible" });
    expect(page.url()).toMatch(/#\/runs$/);
    await expect.poll(() => page.locator("#runs-table tbody").textContent()).toBe("No runs match.");

    await page.getByRole("link", { name: "Media" }).click();
    const bytes = Array.from(readFileSync(png));
    const dropped = await page.evaluateHandle((content) => {
      const transfer = new DataTransfer();
      transfer.items.add(new File([new Uint8Array(content)], "swatch.png", { type: "image/png" }));
      return transfer;
    }, bytes);
    await page.dispatchEvent("#drop-zone", "drop", { dataTransfer: dropped });
    await expect.poll(() => page.locator("#upload-list li").first().textContent(), { timeout: 15_000 }).toMatch(/^swatch\.png .*uploaded as /);
    expect(await page.getByLabel("Upload progress of swatch.png").evaluate((p: HTMLProgressElement) => p.value)).toBe(100);
    const sha = createHash("sha256").update(readFileSync(png)).digest("hex");
    const { ref } = await clients().storage.stat({
      refId: (await page.locator("#upload-list li").first().textContent())?.match(/uploaded as (\S+)/)?.[1] ?? "",
    });
    expect(ref?.sha256).toBe(sha);
    swatchRefId = ref?.id ?? "";
    const card = page.locator(`#media-list li[data-ref="${swatchRefId}"]`);
    await expect.poll(() => card.locator("img").evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth), { timeout: 10_000 }).toBe(160);
    expect(await card.textContent()).toContain(`image/png · ${readFileSync(png).byteLength} B`);
    expect(await card.textContent()).toContain("160 × 90");

    const wav = join(work, "tone.wav");
    writeFileSync(wav, sineWav(8000, 0.5));
    await page.locator("#upload-file").setInputFiles(wav);
    await expect.poll(() => page.locator("#upload-list li").first().textContent(), { timeout: 15_000 }).toMatch(/^tone\.wav .*uploaded as /);
    const audio = page.locator("#media-list li", { hasText: "tone.wav" }).locator("audio");
    await expect.poll(() => audio.evaluate((a: HTMLAudioElement) => (a.readyState >= 1 ? a.duration : 0)), { timeout: 10_000 }).toBeCloseTo(0.5, 2);
    // Keyboard: Enter on the drop zone opens the file chooser.
    const chooser = page.waitForEvent("filechooser");
    await page.locator("#drop-zone").focus();
    await page.keyboard.press("Enter");
    expect((await chooser).isMultiple()).toBe(true);
    await shot("media-library");
  });

  it("uses a library image as a flow input, submits, and shows the run's live DAG, node details, previews and timeline", async () => {
    await page.getByRole("button", { name: "Use swatch.png as input" }).click();
    await page.getByRole("heading", { name: "Run a flow" }).waitFor({ state: "visible" });
    await page.getByLabel("Flow (YAML or JSON)").fill(showcaseFlow());
    // The form lists exactly the unbound inputs: the edge feeds shout.text.
    const image = page.locator('select[data-input="describe.image"]');
    await image.waitFor({ state: "visible" });
    expect(await page.locator("[data-input]").evaluateAll((inputs) => inputs.map((i) => i.getAttribute("data-input")))).toEqual([
      "describe.image",
      "describe.caption",
    ]);
    expect(await image.locator("option:checked").textContent()).toBe("swatch.png (image/png)");
    await page.getByLabel("describe.caption (text, required)").fill("a blue swatch");
    await page.getByRole("button", { name: "Submit and watch" }).click();

    await page.getByRole("heading", { name: /^Run run_/ }).waitFor({ state: "visible" });
    expect(page.url()).toMatch(/#\/runs\/.+/);
    showcaseRunId = decodeURIComponent(page.url().split("#/runs/")[1] ?? "");
    await expect.poll(() => page.locator("#run-state").textContent(), { timeout: 15_000 }).toBe("succeeded");
    const dagNodes = page.locator("#run-dag .dag-node");
    expect(await dagNodes.evaluateAll((nodes) => nodes.map((n) => `${n.getAttribute("data-node")}:${n.getAttribute("class")}`))).toEqual([
      "describe:dag-node node-succeeded",
      "shout:dag-node node-succeeded",
    ]);
    expect(await page.locator("#run-dag .dag-edge text").allTextContents()).toEqual(["caption: text"]);
    // Node colour comes from its state: the box is green.
    expect(
      await dagNodes
        .first()
        .locator("rect")
        .first()
        .evaluate((rect) => getComputedStyle(rect).stroke),
    ).toBe("rgb(67, 160, 71)");

    await page.getByRole("button", { name: "Node describe: succeeded. Show details" }).click();
    const detail = page.locator("#node-detail");
    await detail.waitFor({ state: "visible" });
    expect(await page.locator("#node-title").textContent()).toBe("describe · org.mentatlab.test.showcase · succeeded");
    expect(await page.locator("#node-attempts tbody tr").allTextContents()).toEqual([expect.stringMatching(/^1succeeded\d+\.\d s$/)]);
    expect(await page.locator("#node-log").textContent()).toBe("describing image/png of " + readFileSync(png).byteLength + " bytes");
    expect(await page.locator("#node-progress").textContent()).toContain("100%");
    const outputs = page.locator("#node-outputs");
    await expect.poll(() => outputs.locator("figure").count()).toBe(5);
    // The orchestrator opened a stream for the notes pin; the agent wrote nothing to it, so the
    // orchestrator ended it once the node succeeded, and nobody following it is left waiting.
    notesStreamId = (await outputs.locator('[data-pin="notes"] code').textContent()) ?? "";
    await outputs.getByRole("button", { name: "Show stream of notes" }).click();
    await expect.poll(() => outputs.locator('[data-pin="notes"] pre').textContent(), { timeout: 1_000 }).toBe("The stream ended empty.");
    await expect
      .poll(() => outputs.locator('[data-pin="image"] img').evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth), { timeout: 10_000 })
      .toBe(160);
    const tone = outputs.locator('[data-pin="tone"] audio');
    await expect.poll(() => tone.evaluate((a: HTMLAudioElement) => (a.readyState >= 1 ? a.duration : 0)), { timeout: 10_000 }).toBeCloseTo(0.5, 2);
    expect(await outputs.locator('[data-pin="caption"] pre').textContent()).toBe("a blue swatch (described)");
    expect(await outputs.locator('[data-pin="facts"] pre').textContent()).toBe(
      JSON.stringify({ caption_length: 13, mime_type: "image/png", width: 160 }, null, 2),
    );
    expect(await outputs.locator('[data-pin="tone"] figcaption').textContent()).toMatch(/tone — audio\/(x-)?wav, 7\.9 KiB, 0\.50 s/);

    // Keyboard: Tab reaches the other node, Enter opens it.
    await page.locator('#run-dag [data-node="shout"]').focus();
    await page.keyboard.press("Enter");
    await expect.poll(() => page.locator("#node-title").textContent()).toBe("shout · org.mentatlab.test.shout · succeeded");
    expect(await outputs.locator('[data-pin="text"] pre').textContent()).toBe("A BLUE SWATCH (DESCRIBED)!");
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("node-detail");

    const bars = page.locator("#run-timeline .timeline-bar");
    expect(await bars.count()).toBe(2);
    expect(await bars.first().getAttribute("aria-label")).toMatch(/^describe attempt 1: succeeded, \d+\.\d s$/);
    expect(await page.locator("#run-events").textContent()).toContain("run: succeeded");
    expect(await page.getByRole("button", { name: "Cancel run" }).isDisabled()).toBe(true);
    await shot("run-page");
  });

  it("shows a running run live in the list, cancels it from its page, and resubmits it", async () => {
    const { orchestrator, storage } = clients();
    const { ref: swatch } = await storage.stat({ refId: swatchRefId });
    await page.getByRole("link", { name: "Runs" }).click();
    await page.getByRole("heading", { name: "Runs" }).waitFor({ state: "visible" });
    const { run } = await orchestrator.submitFlow({
      source: { source: { case: "text", value: showcaseFlow({ hold_ms: 20_000 }) } },
      inputs: { "describe.image": { value: { case: "media", value: swatch! } }, "describe.caption": { value: { case: "text", value: "held" } } },
    });
    const row = page.locator(`#runs-table tr[data-run="${run?.runId}"]`);
    // The list refreshes every second: the new run appears, running, within about one.
    await expect.poll(() => row.locator(".badge").textContent(), { timeout: 2_500 }).toBe("running");
    expect(await row.textContent()).toContain("Showcase");
    await row.getByRole("link").click();
    const describeNode = page.locator('#run-dag [data-node="describe"]');
    await expect.poll(() => describeNode.getAttribute("class"), { timeout: 5_000 }).toContain("node-running");
    await describeNode.click();
    await expect.poll(() => page.locator("#node-progress").textContent()).toContain("25% looking");
    await shot("run-running");

    await page.getByRole("button", { name: "Cancel run" }).click();
    await expect.poll(() => page.locator("#run-state").textContent(), { timeout: 1_500 }).toMatch(/^cancelled/);
    await expect.poll(() => describeNode.getAttribute("class"), { timeout: 1_500 }).toContain("node-cancelled");
    expect(await page.getByRole("button", { name: "Cancel run" }).isDisabled()).toBe(true);

    await page.getByRole("button", { name: "Resubmit" }).click();
    await expect.poll(() => page.url()).not.toContain(run?.runId ?? "");
    const again = decodeURIComponent(page.url().split("#/runs/")[1] ?? "");
    expect(again).not.toBe("");
    await expect.poll(() => page.locator("#run-title").textContent()).toBe(again);
    await expect.poll(() => page.locator("#run-state").textContent(), { timeout: 5_000 }).toBe("running");
    const resubmitted = (await orchestrator.getRun({ runId: again })).run;
    expect(resubmitted?.labels["resubmitted_from"]).toBe(run?.runId);
    expect(resubmitted?.inputs["describe.caption"]?.value).toEqual({ case: "text", value: "held" });
    await orchestrator.cancelRun({ runId: again });
    await expect.poll(() => page.locator("#run-state").textContent(), { timeout: 1_500 }).toMatch(/^cancelled/);
  });

  it("filters the runs list by state and flow, shows durations, and pages through it", async () => {
    const { orchestrator } = clients();
    const shout = [
      "apiVersion: v1",
      "kind: Flow",
      "meta: { id: web.shout, name: Shout }",
      "graph:",
      "  nodes:",
      "    - id: shout",
      "      agent: org.mentatlab.test.shout",
    ].join("\n");
    for (const text of ["one", "two", "three"]) {
      await orchestrator.submitFlow({ source: { source: { case: "text", value: shout } }, inputs: { "shout.text": { value: { case: "text", value: text } } } });
    }
    await page.getByRole("link", { name: "Runs" }).click();
    const rows = page.locator("#runs-table tbody tr");
    await expect.poll(() => rows.count()).toBe(6);
    await expect.poll(async () => (await rows.locator(".badge").allTextContents()).filter((s) => s === "succeeded").length, { timeout: 15_000 }).toBe(4);
    for (const cells of await rows.evaluateAll((trs) => trs.map((tr) => tr.lastElementChild?.textContent ?? ""))) expect(cells).toMatch(/^\d+\.\d s$/);

    // Keyboard: a focused run link keeps focus across the list's refreshes.
    const firstLink = rows.first().getByRole("link");
    await firstLink.focus();
    const focusedRun = await rows.first().getAttribute("data-run");
    await page.waitForTimeout(2_200);
    expect(await page.evaluate(() => document.activeElement?.closest("tr")?.getAttribute("data-run"))).toBe(focusedRun);

    await page.getByLabel("State").selectOption("cancelled");
    await expect.poll(async () => (await rows.locator(".badge").allTextContents()).join(",")).toBe("cancelled,cancelled");
    await page.getByLabel("State").selectOption("");
    await page.getByLabel("Flow", { exact: true }).fill("shout");
    await expect.poll(async () => (await rows.allTextContents()).every((t) => t.includes("Shout")) && (await rows.count())).toBe(3);
    await page.getByLabel("Flow", { exact: true }).fill("no such flow");
    await expect.poll(() => page.locator("#runs-table tbody").textContent()).toBe("No runs match.");
    await page.getByLabel("Flow", { exact: true }).fill("");

    await page.getByLabel("Per page").selectOption("5");
    await expect.poll(() => rows.count()).toBe(5);
    const first = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-run")));
    await page.getByRole("button", { name: "Next page" }).click();
    await expect.poll(() => rows.count()).toBe(1);
    expect(first).not.toContain(await rows.first().getAttribute("data-run"));
    expect(await page.getByRole("button", { name: "Next page" }).isDisabled()).toBe(true);
    await page.getByRole("button", { name: "Previous page" }).click();
    await expect.poll(() => rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-run")))).toEqual(first);
    await shot("runs-list");
  });

  it("picks an example flow and a registered agent, and lists the agents with their manifests", async () => {
    await page.getByRole("link", { name: "Run a flow" }).click();
    await page.getByLabel("Start from").selectOption({ label: "org.mentatlab.test.shout 1.0.0" });
    await page.locator('[data-input="shout.text"]').waitFor({ state: "visible" });
    expect(await page.getByLabel("Flow (YAML or JSON)").inputValue()).toContain("agent: org.mentatlab.test.shout");
    await page.getByLabel("Start from").selectOption({ label: "image-thumbnail-describe.yaml" });
    expect(await page.getByLabel("Flow (YAML or JSON)").inputValue()).toContain("id: examples.image-thumbnail-describe");
    // Only the thumbnail's image is unbound (the edge feeds describe.image), offered from the library.
    const image = page.locator('select[data-input="thumbnail.image"]');
    await image.waitFor({ state: "visible" });
    expect(await page.locator("[data-input]").evaluateAll((inputs) => inputs.map((i) => i.getAttribute("data-input")))).toEqual(["thumbnail.image"]);
    expect(await image.locator("option").allTextContents()).toContain("swatch.png (image/png)");

    await page.getByRole("link", { name: "Agents" }).click();
    await page.getByRole("button", { name: "Show the manifest of org.mentatlab.test.showcase" }).click();
    const manifest = JSON.parse((await page.locator("#agent-manifest-json").textContent()) ?? "{}");
    expect(manifest.id).toBe("org.mentatlab.test.showcase");
    expect(manifest.outputs.map((p: { name: string }) => p.name)).toEqual(["image", "caption", "facts", "tone", "notes"]);
    await shot("agents");
  });

  it("lists live and ended streams, follows text live and plays an ended audio stream", async () => {
    const { stream } = clients();
    const { streamId, row } = await followNewStream(PinType.TEXT, "text/plain");
    const text = new TextEncoder();
    await stream.publishBatch({
      streamId,
      payloads: [
        { data: text.encode("tokens "), clientSeq: 1n },
        { data: text.encode("arrive live"), clientSeq: 2n },
      ],
    });
    await expect.poll(() => page.locator("#follow-text").textContent(), { timeout: 1_000 }).toBe("tokens arrive live");
    await stream.closeStream({ streamId });
    await expect.poll(() => row.locator("td").nth(1).textContent(), { timeout: 1_000 }).toBe("completed");

    const { stream: audioInfo } = await stream.initStream({ payloadType: PinType.AUDIO, mimeType: "audio/wav" });
    const audioId = audioInfo?.ref?.streamId ?? "";
    const wav = sineWav(8000, 0.5);
    const payloads = [];
    for (let offset = 0; offset < wav.byteLength; offset += 8192)
      payloads.push({ data: wav.subarray(offset, offset + 8192), clientSeq: BigInt(payloads.length + 1) });
    await stream.publishBatch({ streamId: audioId, payloads });
    await stream.closeStream({ streamId: audioId });
    // After a reload the ended streams are still listed, and one can still be played.
    await page.reload();
    const audioRow = page.locator(`#streams-table tr[data-stream="${audioId}"]`);
    await expect.poll(() => audioRow.locator("td").nth(1).textContent()).toBe("completed");
    expect(await page.locator(`#streams-table tr[data-stream="${streamId}"] td`).nth(1).textContent()).toBe("completed");
    await audioRow.getByRole("button", { name: `Follow stream ${audioId}` }).click();
    const audio = page.locator("#follow-media audio");
    await expect.poll(() => audio.evaluate((a: HTMLAudioElement) => (a.readyState >= 1 ? a.duration : 0)), { timeout: 10_000 }).toBeCloseTo(0.5, 2);
    // A run's stream links to its run.
    const notesRow = page.locator(`#streams-table tr[data-stream="${notesStreamId}"]`);
    expect(await notesRow.locator("td").nth(3).textContent()).toBe(`describe.notes of run ${showcaseRunId}`);
    await shot("streams");
    await notesRow.getByRole("link", { name: showcaseRunId }).click();
    await expect.poll(() => page.locator("#run-title").textContent()).toBe(showcaseRunId);
    await expect.poll(() => page.locator("#run-streams").textContent()).toBe(`${notesStreamId} describe.notes, completed`);
    // …and the run's stream output links back to that stream, followed on the streams page.
    await page.getByRole("button", { name: "Node describe: succeeded. Show details" }).click();
    await page.locator('#node-outputs [data-pin="notes"]').getByRole("link", { name: "on the streams page" }).click();
    await expect.poll(() => page.locator("#follow-name").textContent()).toBe(notesStreamId);
    await expect.poll(() => page.locator("#follow-text").textContent()).toBe("The stream ended empty.");
  });

  it("retries a failed run from its page: the new run keeps what succeeded, links it, and reruns the failed node; resubmitted, every node is cached", async () => {
    const { orchestrator } = clients();
    const ledger = join(work, "web-ledger");
    const params = (more: string) => `{ ledger: ${JSON.stringify(ledger)}${more} }`;
    const flow = [
      "apiVersion: v1",
      "kind: Flow",
      "meta: { id: web.retry, name: Retry }",
      "graph:",
      "  nodes:",
      `    - { id: first, agent: org.mentatlab.test.ledger, params: ${params("")} }`,
      `    - { id: second, agent: org.mentatlab.test.ledger, params: ${params(`, fail_once: ${JSON.stringify(join(work, "web-second-failed"))}`)} }`,
      "  edges:",
      "    - { from: first.text, to: second.text }",
    ].join("\n");
    const { run } = await orchestrator.submitFlow({
      source: { source: { case: "text", value: flow } },
      inputs: { "first.text": { value: { case: "text", value: "x" } } },
    });
    const failedId = run?.runId ?? "";
    await page.evaluate((hash) => (location.hash = hash), `#/runs/${encodeURIComponent(failedId)}`);
    await expect.poll(() => page.locator("#run-state").textContent(), { timeout: 5_000 }).toMatch(/^failed/);
    const retry = page.getByRole("button", { name: "Retry" });
    expect(await retry.isDisabled()).toBe(false);
    await retry.click();
    await expect.poll(() => page.url()).not.toContain(failedId);
    const retryId = decodeURIComponent(page.url().split("#/runs/")[1] ?? "");
    await expect.poll(() => page.locator("#run-title").textContent()).toBe(retryId);
    await expect.poll(() => page.locator("#run-state").textContent(), { timeout: 5_000 }).toBe("succeeded");
    expect(await retry.isDisabled()).toBe(true);
    expect(await page.locator("#run-retry-of").textContent()).toBe(` · retry of ${failedId}`);
    expect(await page.locator("#run-events").textContent()).toContain(`first: succeeded: reused from run ${failedId} node first (retry)`);
    expect(await page.locator('#run-dag [data-node="first"] .dag-node-state').textContent()).toBe("succeeded · kept");
    expect(await page.locator('#run-dag [data-node="second"] .dag-node-state').textContent()).toBe("succeeded");
    await page.locator('#run-dag [data-node="first"]').click();
    await expect.poll(() => page.locator("#node-reused").textContent()).toBe(`Kept by the retry: no agent ran; outputs of node first in run ${failedId}.`);
    await expect.poll(() => page.locator('#node-outputs [data-pin="text"] pre').textContent()).toBe("x>first");
    await shot("run-retried");
    // Back to the original through the link: its page offers Retry again (a failed run stays retryable).
    await page.locator("#run-retry-of a").click();
    await expect.poll(() => page.locator("#run-title").textContent()).toBe(failedId);
    await expect.poll(() => page.locator("#run-state").textContent(), { timeout: 5_000 }).toMatch(/^failed/);
    // Resubmitted: the same flow and inputs again: both nodes come from the node cache, no agent starts.
    await page.getByRole("button", { name: "Resubmit" }).click();
    await expect.poll(() => page.url()).not.toContain(failedId);
    await expect.poll(() => page.locator("#run-state").textContent(), { timeout: 5_000 }).toBe("succeeded");
    await page.locator('#run-dag [data-node="second"]').click();
    await expect.poll(() => page.locator("#node-reused").textContent()).toBe(`Cached: no agent ran; outputs of node second in run ${retryId}.`);
    expect(await page.locator('#run-dag [data-node="second"] .dag-node-state').textContent()).toBe("succeeded · cached");
    expect(await page.locator("#run-events").textContent()).toContain(`first: succeeded: reused from run ${failedId} node first (cached)`);
    expect(readFileSync(ledger, "utf8")).toBe("first\nsecond\nsecond\n");
  });

  it("shows a mapped node's items on its box and in its panel, with the failed ones and their errors", async () => {
    const { orchestrator } = clients();
    const params = `{ ledger: ${JSON.stringify(join(work, "web-map-ledger"))}, fail: [c] }`;
    const flow = [
      "apiVersion: v1",
      "kind: Flow",
      "meta: { id: web.map, name: Map }",
      "graph:",
      "  nodes:",
      `    - { id: each, agent: org.mentatlab.test.map-item, map: { pin: text, concurrency: 2, on_failure: continue }, params: ${params} }`,
    ].join("\n");
    const { run } = await orchestrator.submitFlow({
      source: { source: { case: "text", value: flow } },
      inputs: { "each.text": jsonPinValue(["a", "b", "c", "d"]) },
    });
    await page.evaluate((hash) => (location.hash = hash), `#/runs/${encodeURIComponent(run?.runId ?? "")}`);
    await expect.poll(() => page.locator("#run-state").textContent(), { timeout: 10_000 }).toMatch(/^failed/);
    await expect.poll(() => page.locator('#run-dag [data-node="each"] .dag-node-state').textContent()).toBe("failed · map 4/4, 1 failed (items 2)");
    await page.locator('#run-dag [data-node="each"]').click();
    await expect.poll(() => page.locator("#node-progress").textContent()).toContain("100% map 4/4, 1 failed (items 2)");
    expect(await page.locator("#node-progress .map-failure").textContent()).toBe("item 2 failed: agent exited with code 1: item c fails (exit 1)");
    expect(await page.locator("#run-events").textContent()).toContain('each[3]: output text = "d!"');
    await shot("run-mapped");
  });

  it("plays a live WAV stream while it arrives, with the first-byte and current latency", async () => {
    const { stream } = clients();
    const { streamId } = await followNewStream(PinType.AUDIO, "audio/wav");
    // A producer that does not know the length yet: a header with unknown sizes, then 100 ms of PCM at a time.
    const pcm = sineWav(16_000, 2).subarray(44);
    await stream.publishBatch({ streamId, payloads: [{ data: wavHeader({ sampleRate: 16_000, channels: 1 }) }] });
    const played = () =>
      page
        .locator("#follow-media .live-audio")
        .textContent()
        .then((text) => Number(/Playing live: ([\d.]+) s/.exec(text ?? "")?.[1] ?? 0));
    let playingBeforeEnd = 0;
    for (let offset = 0; offset < pcm.byteLength; offset += 3_200) {
      await stream.publishBatch({ streamId, payloads: [{ data: pcm.subarray(offset, offset + 3_200) }] });
      await new Promise((resolve) => setTimeout(resolve, 100));
      playingBeforeEnd = await played();
    }
    // Still open, and already well into playback.
    expect(playingBeforeEnd).toBeGreaterThan(0.5);
    expect(await page.locator("#follow-latency").textContent()).toMatch(/^first byte \d+ ms after following · now \d+ ms behind the producer$/);
    await shot("stream-live-audio");
    await stream.closeStream({ streamId });
    // All of it plays out, and no more than was sent.
    await expect.poll(played, { timeout: 5_000 }).toBe(2);
    expect(await page.locator("#follow-media .live-audio").textContent()).toMatch(/^Playing live: 2\.00 s of 2\.00 s received/);
  });

  it("plays a run's stream outputs live on its page while they are produced", async () => {
    const { orchestrator, stream } = clients();
    const flow =
      "apiVersion: v1\nkind: Flow\nmeta: { id: web.live-outputs, name: Live outputs }\ngraph:\n  nodes: [{ id: live, agent: org.mentatlab.test.live-outputs }]\n  edges: []";
    const { run } = await orchestrator.submitFlow({ source: { source: { case: "text", value: flow } } });
    const runId = run?.runId ?? "";
    await page.goto(`${mesh.url}/#/runs/${encodeURIComponent(runId)}`);
    const liveNode = page.locator('#run-dag [data-node="live"]');
    await expect.poll(() => liveNode.getAttribute("class"), { timeout: 10_000 }).toContain("node-running");
    await liveNode.click();
    const streams = (await stream.listStreams({ filter: { runId } })).streams;
    const idOf = (pin: string) => streams.find((s) => s.pin === pin)?.ref?.streamId ?? "";
    const outputs = page.locator("#node-outputs");
    await outputs.getByRole("button", { name: "Show stream of tokens" }).click();
    await outputs.getByRole("button", { name: "Show stream of sound" }).click();

    const text = new TextEncoder();
    await stream.publishBatch({ streamId: idOf("tokens"), payloads: [{ data: text.encode("tokens ") }, { data: text.encode("while running") }] });
    await expect.poll(() => outputs.locator('[data-pin="tokens"] pre').textContent(), { timeout: 2_000 }).toBe("tokens while running");
    const pcm = sineWav(16_000, 2).subarray(44);
    await stream.publishBatch({ streamId: idOf("sound"), payloads: [{ data: wavHeader({ sampleRate: 16_000, channels: 1 }) }] });
    const played = () =>
      outputs
        .locator('[data-pin="sound"] .live-audio')
        .textContent()
        .then((shown) => Number(/Playing live: ([\d.]+) s/.exec(shown ?? "")?.[1] ?? 0));
    for (let offset = 0; offset < pcm.byteLength / 2; offset += 3_200) {
      await stream.publishBatch({ streamId: idOf("sound"), payloads: [{ data: pcm.subarray(offset, offset + 3_200) }] });
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // Playing from what arrived, while both streams and the node are still open.
    await expect.poll(played, { timeout: 3_000 }).toBeGreaterThan(0.3);
    for (const pin of ["tokens", "sound"]) expect((await stream.getStream({ streamId: idOf(pin) })).stream?.state).toBe(StreamState.OPEN);
    expect(await liveNode.getAttribute("class")).toContain("node-running");
    await shot("run-live-outputs");
    await orchestrator.cancelRun({ runId });
    await expect.poll(() => page.locator("#run-state").textContent(), { timeout: 5_000 }).toMatch(/^cancelled/);
  });

  it("keeps a long live fMP4 stream's MediaSource buffer to the last seconds behind playback", async () => {
    const mp4 = join(work, "long.mp4");
    // 150 s of small video, a fragment per 1 s GOP, as a live producer sends it.
    await ffmpegFromTestSources(
      ["testsrc=size=160x90:rate=10:duration=150"],
      [
        "-pix_fmt",
        "yuv420p",
        "-c:v",
        "libx264",
        "-profile:v",
        "baseline",
        "-preset",
        "ultrafast",
        "-g",
        "10",
        "-movflags",
        "frag_keyframe+empty_moov+default_base_moof",
        "-f",
        "mp4",
        mp4,
      ],
    );
    const bytes = readFileSync(mp4);
    const { stream } = clients();
    const { streamId } = await followNewStream(PinType.VIDEO, "video/mp4");
    const video = page.locator("#follow-media video");
    await video.waitFor({ state: "attached" });
    // Eight times real time, so two minutes of media play in seconds.
    await video.evaluate((v: HTMLVideoElement) => (v.playbackRate = 8));
    const state = () =>
      video.evaluate((v: HTMLVideoElement) => {
        const ranges = Array.from({ length: v.buffered.length }, (_, i) => [v.buffered.start(i), v.buffered.end(i)] as const);
        return { time: v.currentTime, first: ranges[0]?.[0] ?? 0, end: ranges.at(-1)?.[1] ?? 0, length: ranges.reduce((n, [a, b]) => n + b - a, 0) };
      });
    let longestBuffered = 0;
    let offset = 0;
    let seq = 0n;
    // Publish as a live producer would: a chunk whenever less than 8 s of media is buffered ahead.
    while (offset < bytes.byteLength) {
      const now = await state();
      if (now.time > 40) longestBuffered = Math.max(longestBuffered, now.length);
      if (offset > 0 && now.end - now.time > 8) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      await stream.publishBatch({ streamId, payloads: [{ data: bytes.subarray(offset, offset + 16_384), clientSeq: ++seq }] });
      offset += 16_384;
    }
    await stream.closeStream({ streamId });
    await expect.poll(async () => (await state()).time, { timeout: 30_000 }).toBeGreaterThan(140);
    const last = await state();
    // Played on far past what is kept, and only about the last KEEP_BEHIND_SECONDS (plus the trim step
    // and what was buffered ahead) stayed in the buffer.
    const bound = KEEP_BEHIND_SECONDS + TRIM_STEP_SECONDS + 10;
    expect(last.first, JSON.stringify(last)).toBeGreaterThan(last.time - bound);
    expect(longestBuffered).toBeGreaterThan(0);
    expect(longestBuffered).toBeLessThanOrEqual(bound);
  }, 90_000);

  it("fits a 390 px phone screen on every page", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const [name, hash, ready] of [
      ["runs", "#/runs", "#runs-table tbody tr[data-run]"],
      ["run", `#/runs/${showcaseRunId}`, "#run-dag .dag-node.node-succeeded"],
      ["flows", "#/flows", "#flow-text"],
      ["media", "#/media", "#media-list li[data-ref]"],
      ["agents", "#/agents", "#agents-table tbody tr[data-agent]"],
      ["streams", "#/streams", "#streams-table tbody tr"],
    ] as const) {
      await page.goto(`${mesh.url}/${hash}`);
      await page.locator(ready).first().waitFor({ state: "visible", timeout: 5_000 });
      const widest = await page.evaluate(() =>
        Array.from(document.querySelectorAll("body *"))
          // A table or graph may be wider than the screen inside its own scrolling box, which must not be.
          .filter((node) => node.closest(".table-scroll > *, .dag-scroll > *") === null)
          .filter((node) => node.getClientRects().length > 0)
          .map((node) => ({
            node: `${node.tagName.toLowerCase()}#${node.id}.${node.getAttribute("class") ?? ""}`,
            right: Math.round(node.getBoundingClientRect().right),
          }))
          .filter((found) => found.right > 390),
      );
      expect(widest, `${name}: elements reaching past the screen's right edge`).toEqual([]);
      // The library holds the two uploads and the tone the showcase runs produced.
      if (name === "media")
        await expect
          .poll(() => page.locator("#media-list li[data-ref]").allTextContents())
          .toEqual([expect.stringContaining("showcase-tone"), expect.stringContaining("tone.wav"), expect.stringContaining("swatch.png")]);
      expect(await page.evaluate(() => document.documentElement.scrollWidth), name).toBeLessThanOrEqual(390);
      await shot(`phone-${name}`);
    }
  });

  it("lists in the media library what another client uploaded to the workspace", async () => {
    await page.setViewportSize({ width: 1280, height: 900 });
    async function* upload() {
      yield create(UploadRequestSchema, { part: { case: "header", value: { filename: "from-another-client.txt", mimeType: "text/plain" } } });
      yield create(UploadRequestSchema, { part: { case: "chunk", value: new TextEncoder().encode("uploaded with the SDK, not this browser") } });
    }
    const { ref } = await clients().storage.upload(upload());
    await page.goto(`${mesh.url}/#/media`);
    await expect.poll(() => page.locator("#media-list li[data-ref]").first().getAttribute("data-ref")).toBe(ref?.id);
    expect(await page.locator(`#media-list li[data-ref="${ref?.id}"]`).textContent()).toContain("from-another-client.txt");
  });

  it("produced no failed request and no console error on any page", () => {
    expect(pageFaults).toEqual([]);
  });
});

/** A mono 16-bit PCM WAV of a 440 Hz tone. */
/** Opens a stream, waits for the streams page to list it as open, and clicks its Follow button. */
async function followNewStream(payloadType: PinType, mimeType: string) {
  await page.getByRole("link", { name: "Streams", exact: true }).click();
  const { stream: info } = await clients().stream.initStream({ payloadType, mimeType });
  const streamId = info?.ref?.streamId ?? "";
  const row = page.locator(`#streams-table tr[data-stream="${streamId}"]`);
  await expect.poll(() => row.locator("td").nth(1).textContent(), { timeout: 1_000 }).toBe("open");
  await row.getByRole("button", { name: `Follow stream ${streamId}` }).click();
  return { streamId, row };
}

function sineWav(sampleRate: number, seconds: number): Uint8Array {
  const samples = Math.round(sampleRate * seconds);
  const pcm = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i++) pcm.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / sampleRate)), i * 2);
  return Buffer.concat([wavHeader({ sampleRate, channels: 1 }, pcm.byteLength), pcm]);
}
