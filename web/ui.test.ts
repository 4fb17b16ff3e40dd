import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { chromium, type Browser, type Page } from "playwright-core";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PinType } from "../gen/mentatlab/v1/common_pb.js";
import { AgentRegistryService } from "../gen/mentatlab/v1/registry_pb.js";
import { StreamService } from "../gen/mentatlab/v1/stream_pb.js";
import { startEmbedded, type EmbeddedMesh } from "../services/mesh/embedded.js";
import { requireTool } from "../test/harness/index.js";
import { buildWeb } from "./build.js";

const chromiumPath = "/usr/bin/chromium";
const shoutAgentDir = fileURLToPath(new URL("../services/cli/ctl/testdata", import.meta.url));
const uploadScreenshot = "/tmp/mentatlab-web-upload.png";
const screenshot = "/tmp/mentatlab-web.png";
const phoneScreenshot = "/tmp/mentatlab-web-390.png";
/** Every response of 400 or more and every console error the pages produced, for the final check. */
const pageFaults: string[] = [];

let work: string;
let mesh: EmbeddedMesh;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  const executablePath = requireTool(chromiumPath, "install it with `apt-get install -y chromium`");
  work = mkdtempSync(join(tmpdir(), "mentatlab-web-"));
  const dist = await buildWeb(join(work, "dist"));
  mesh = await startEmbedded({
    port: 0,
    dataDir: join(work, "data"),
    // The embedded mesh does not yet hand its generated presign secret to storage (reported to the lead).
    env: { MENTATLAB_WEB_DIR: dist, MENTATLAB_PRESIGN_SECRET: "web-ui-test-presign-secret" },
  });
  browser = await chromium.launch({
    executablePath,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  page.on("response", (response) => {
    if (response.status() >= 400) pageFaults.push(`${response.status()} ${response.url()}`);
  });
  page.on("console", (message) => {
    if (message.type() === "error") pageFaults.push(`console: ${message.text()}`);
  });
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
  return { registry: createClient(AgentRegistryService, transport), stream: createClient(StreamService, transport) };
}

async function registerShoutAgent(): Promise<void> {
  const manifest = [
    "id: org.mentatlab.test.shout",
    "version: 1.0.0",
    "description: upper-cases its input",
    `command: [${JSON.stringify(process.execPath)}, shout-agent.mjs]`,
    `working_dir: ${JSON.stringify(shoutAgentDir)}`,
    "inputs: [{ name: text, type: text, required: true }]",
    "outputs: [{ name: text, type: text }]",
  ].join("\n");
  await clients().registry.registerAgent({ source: { source: { case: "text", value: manifest } } });
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
    expect(await page.getByRole("link", { name: "Media" }).isVisible()).toBe(false);
    expect(await page.getByRole("button", { name: "Sign out" }).isVisible()).toBe(false);
    expect(await page.locator("#app").isVisible()).toBe(false);
  });

  it("refuses a wrong key and keeps the app hidden", async () => {
    await page.goto(mesh.url);
    await page.getByLabel("API key").fill("mlk_wrong_key_0000000000");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => page.locator("#status").textContent()).toMatch(/Could not sign in: Unauthenticated/);
    expect(await page.locator("#app").isHidden()).toBe(true);
    // The refused key's 401 is this test's point, not a fault of the page.
    pageFaults.length = 0;
  });

  it("signs in with a pasted key, lists agents, uploads a PNG and shows its preview", async () => {
    await registerShoutAgent();
    await page.goto(mesh.url);
    await page.getByLabel("API key").fill(mesh.adminKey ?? "");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator("#app").waitFor({ state: "visible" });
    await expect.poll(() => page.locator("#agents-table tbody").textContent()).toContain("org.mentatlab.test.shout");

    const png = join(work, "swatch.png");
    await sharp({ create: { width: 160, height: 90, channels: 3, background: { r: 52, g: 81, b: 178 } } }).png().toFile(png);
    await page.locator("#upload-file").setInputFiles(png);
    await page.getByRole("button", { name: "Upload" }).click();
    const preview = page.locator("#media-preview img");
    await preview.waitFor({ state: "attached" });
    await expect.poll(() => preview.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth), { timeout: 10_000 }).toBe(160);
    expect(await page.locator("#media-ref").textContent()).toContain("image/png");
    expect(await page.locator("#media-ref").textContent()).toContain("160 × 90");
    expect(await page.locator("#media-ref").textContent()).toContain(createHash("sha256").update(readFileSync(png)).digest("hex"));
    await page.screenshot({ path: uploadScreenshot, fullPage: true });
  });

  it("keeps the key across a reload, runs a pasted flow and watches it succeed", async () => {
    await page.reload();
    await page.locator("#app").waitFor({ state: "visible" });
    await page.getByLabel("Flow (YAML or JSON)").fill(
      ["apiVersion: v1", "kind: Flow", "meta: { id: shout, name: Shout }", "graph:", "  nodes:", "    - id: shout", "      agent: org.mentatlab.test.shout"].join("\n"),
    );
    await page.locator("#flow-inputs").fill("shout.text=hello from the browser");
    await page.getByRole("button", { name: "Submit and watch" }).click();
    await expect.poll(() => page.locator("#run-state").textContent(), { timeout: 15_000 }).toBe("succeeded");
    expect(await page.locator("#run-events").textContent()).toContain('output text = "HELLO FROM THE BROWSER!"');
    expect(await page.locator("#run-events").textContent()).toContain("shout: progress 50% halfway");
    expect(await page.locator("#run-events").textContent()).toContain("run: succeeded");
    expect(await page.locator("#run-nodes").textContent()).toContain("100%");
    expect(await page.getByRole("navigation", { name: "Sections" }).isVisible()).toBe(true);
  });

  it("clears the previous run from the screen when a new flow is submitted", async () => {
    expect(await page.locator("#run-state").textContent()).toBe("succeeded");
    await page.getByLabel("Flow (YAML or JSON)").fill(
      ["apiVersion: v1", "kind: Flow", "meta: { id: broken, name: Broken }", "graph:", "  nodes:", "    - id: lost", "      agent: org.mentatlab.test.no-such-agent"].join("\n"),
    );
    await page.getByRole("button", { name: "Submit and watch" }).click();
    await page.locator("#flow-violations li").first().waitFor({ state: "visible" });
    expect(await page.locator("#run-state").textContent()).toBe("–");
    expect(await page.locator("#run-state").getAttribute("class")).toBe("");
    expect(await page.locator("#run-events li").count()).toBe(0);
    expect(await page.locator("#run-nodes tbody tr").count()).toBe(0);
    expect(await page.locator("#run-id").inputValue()).toBe("");

    await page.getByLabel("Flow (YAML or JSON)").fill(
      ["apiVersion: v1", "kind: Flow", "meta: { id: shout, name: Shout }", "graph:", "  nodes:", "    - id: shout", "      agent: org.mentatlab.test.shout"].join("\n"),
    );
    await page.locator("#flow-inputs").fill("shout.text=second run");
    await page.getByRole("button", { name: "Submit and watch" }).click();
    await expect.poll(() => page.locator("#run-state").textContent(), { timeout: 15_000 }).toBe("succeeded");
    expect(await page.locator("#flow-violations li").count()).toBe(0);
    const events = await page.locator("#run-events").textContent();
    expect(events).toContain('output text = "SECOND RUN!"');
    expect(events).not.toContain("HELLO FROM THE BROWSER");
  });

  it("announces a stream live and follows its text", async () => {
    const { stream } = clients();
    const { stream: info } = await stream.initStream({ payloadType: PinType.TEXT, mimeType: "text/plain" });
    const streamId = info?.ref?.streamId ?? "";
    const row = page.locator(`#streams-table tr[data-stream="${streamId}"]`);
    await row.waitFor({ state: "visible" });
    await row.getByRole("button", { name: `Follow stream ${streamId}` }).click();
    const text = new TextEncoder();
    await stream.publishBatch({ streamId, payloads: [{ data: text.encode("tokens "), clientSeq: 1n }, { data: text.encode("arrive live"), clientSeq: 2n }] });
    await expect.poll(() => page.locator("#follow-text").textContent()).toBe("tokens arrive live");
    await stream.closeStream({ streamId });
    await expect.poll(() => page.locator("#status").textContent()).toMatch(new RegExp(`Stream ${streamId} ended`));

  });

  it("plays a followed audio stream once it completes", async () => {
    const { stream } = clients();
    const { stream: info } = await stream.initStream({ payloadType: PinType.AUDIO, mimeType: "audio/wav" });
    const streamId = info?.ref?.streamId ?? "";
    const row = page.locator(`#streams-table tr[data-stream="${streamId}"]`);
    await row.getByRole("button", { name: `Follow stream ${streamId}` }).click();
    const wav = sineWav(8000, 0.5);
    const payloads = [];
    for (let offset = 0; offset < wav.byteLength; offset += 8192) payloads.push({ data: wav.subarray(offset, offset + 8192), clientSeq: BigInt(payloads.length + 1) });
    await stream.publishBatch({ streamId, payloads });
    await stream.closeStream({ streamId });
    const audio = page.locator("#follow-media audio");
    await audio.waitFor({ state: "attached" });
    await expect.poll(() => audio.evaluate((a: HTMLAudioElement) => (a.readyState >= 1 ? a.duration : 0)), { timeout: 10_000 }).toBeCloseTo(0.5, 2);

    await page.screenshot({ path: screenshot, fullPage: true });
  });

  it("fits a 390 px phone screen: no table widens the page", async () => {
    // A live stream with its long id and run-less producer, so the streams table has a row to lay out.
    await clients().stream.initStream({ payloadType: PinType.TEXT, mimeType: "text/plain" });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.reload();
    await page.locator("#app").waitFor({ state: "visible" });
    await expect.poll(() => page.locator("#streams-table tbody tr").count()).toBeGreaterThan(0);
    await expect.poll(() => page.locator("#agents-table tbody tr").count()).toBeGreaterThan(0);
    const widest = await page.evaluate(() =>
      Array.from(document.querySelectorAll("body *"))
        // A table may be wider than the screen inside its own scrolling box, which must not be.
        .filter((node) => node.classList.contains("table-scroll") || node.closest(".table-scroll") === null)
        .map((node) => ({ node: `${node.tagName.toLowerCase()}#${node.id}.${node.className}`, right: Math.round(node.getBoundingClientRect().right) }))
        .filter((found) => found.right > 390),
    );
    expect(widest, "elements reaching past the screen's right edge").toEqual([]);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    for (const table of ["#agents-table", "#run-nodes", "#streams-table"]) {
      const box = await page.locator(table).locator("xpath=..").boundingBox();
      expect(box, table).not.toBeNull();
      expect(box!.x + box!.width, table).toBeLessThanOrEqual(390);
    }
    await page.screenshot({ path: phoneScreenshot, fullPage: true });
  });

  it("produced no failed request and no console error on any page", () => {
    expect(pageFaults).toEqual([]);
  });
});

/** A mono 16-bit PCM WAV of a 440 Hz tone. */
function sineWav(sampleRate: number, seconds: number): Uint8Array {
  const samples = Math.round(sampleRate * seconds);
  const wav = Buffer.alloc(44 + samples * 2);
  wav.write("RIFF", 0);
  wav.writeUInt32LE(36 + samples * 2, 4);
  wav.write("WAVEfmt ", 8);
  wav.writeUInt32LE(16, 16);
  wav.writeUInt16LE(1, 20);
  wav.writeUInt16LE(1, 22);
  wav.writeUInt32LE(sampleRate, 24);
  wav.writeUInt32LE(sampleRate * 2, 28);
  wav.writeUInt16LE(2, 32);
  wav.writeUInt16LE(16, 34);
  wav.write("data", 36);
  wav.writeUInt32LE(samples * 2, 40);
  for (let i = 0; i < samples; i++) wav.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / sampleRate)), 44 + i * 2);
  return wav;
}
