import { toJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, connect, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RunState } from "../gen/mentatlab/v1/orchestrator_pb.js";
import { startEmbedded, type EmbeddedMesh } from "../services/mesh/embedded.js";
import { meshClients } from "../test/e2e/support/clients.js";
import { registerExample } from "../test/e2e/support/examples.js";
import { freePort, launchChromium, LOOPBACK, requireTool } from "../test/harness/index.js";
import { type ReceivedFrame, StreamSocket } from "../test/support/stream-websocket.js";
import { buildWeb } from "./build.js";

const producerKey = "mic-producer-key-0123456789";
const consumerKey = "mic-consumer-key-0123456789";
const adminKey = "mic-admin-key-000123456789";

/** A TCP relay in front of the mesh whose connections the test can cut, as a flaky network would. */
interface CuttableRelay {
  readonly url: string;
  cutAll(): void;
  close(): Promise<void>;
}

async function startRelay(port: number, target: number): Promise<CuttableRelay> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect({ host: LOOPBACK, port: target });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.once("close", () => sockets.delete(socket));
      socket.on("error", () => undefined);
    }
    client.once("close", () => upstream.destroy());
    upstream.once("close", () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(port, LOOPBACK, resolve));
  return {
    url: `http://${LOOPBACK}:${port}`,
    cutAll() {
      for (const socket of sockets) socket.destroy();
    },
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

let work: string;
let mesh: EmbeddedMesh;
let relay: CuttableRelay;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "mentatlab-mic-"));
  const dist = await buildWeb(join(work, "dist"));
  const relayPort = await freePort();
  mesh = await startEmbedded({
    port: 0,
    dataDir: join(work, "data"),
    env: {
      PATH: process.env.PATH,
      MENTATLAB_WEB_DIR: dist,
      MENTATLAB_API_KEYS: `${producerKey}=pat@acme:multimodal_producer,${consumerKey}=carl@acme:multimodal_consumer,${adminKey}=ada@acme:admin`,
      // The page comes through the relay, so the URLs the mesh hands out must too.
      MENTATLAB_PUBLIC_URL: `http://${LOOPBACK}:${relayPort}`,
    },
  });
  relay = await startRelay(relayPort, Number(new URL(mesh.url).port));
  browser = await launchChromium([
    // A microphone without hardware: Chromium's fake device (a beeping tone), allowed without asking.
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
  ]);
  page = await browser.newPage();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await relay?.close();
  await mesh?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

function payloadBytes(frames: readonly ReceivedFrame[]): Buffer[] {
  return frames.flatMap((frame) => ("binary" in frame ? [frame.binary] : []));
}

describe("the web UI publishes the microphone over a WebSocket", () => {
  it("streams MediaRecorder's opus chunks live to a subscriber, survives a dropped connection without gaps or repeats, and ends the stream", async () => {
    await page.goto(relay.url);
    await page.getByLabel("API key").fill(producerKey);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("link", { name: "Streams" }).click();
    const button = page.getByRole("button", { name: "Publish microphone" });
    await button.click();
    await page.getByRole("button", { name: "Stop publishing" }).waitFor();
    const streamId = (await page.locator("#publish-microphone").getAttribute("data-stream")) ?? "";
    expect(streamId).toMatch(/^st_/);

    // A subscriber in Node follows the stream live, straight from the mesh.
    const follower = await StreamSocket.open(`${mesh.url.replace("http", "ws")}/streams/${streamId}/ws`, { key: consumerKey });
    follower.sendJson({ type: "subscribe" });
    const start = await follower.nextText();
    expect(start).toMatchObject({ type: "stream_start", stream: { ref: { mimeType: "audio/webm;codecs=opus", payloadType: "PIN_TYPE_AUDIO" } } });
    await follower.until("stream_data", 10_000);
    const first = await follower.next();
    // A WebM file starts with the EBML magic number.
    expect("binary" in first && first.binary.subarray(0, 4).toString("hex")).toBe("1a45dfa3");

    await expect.poll(() => page.locator("#microphone-status").textContent(), { timeout: 10_000 }).toMatch(/bytes acknowledged/);
    // The network drops every connection through the relay, the page's WebSocket among them.
    relay.cutAll();
    await expect.poll(() => page.locator("#microphone-status").textContent(), { timeout: 10_000 }).toMatch(/bytes acknowledged after 1 reconnect/);
    // Recording went on meanwhile; some more of it after the reconnect.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await page.getByRole("button", { name: "Stop publishing" }).click();
    await expect.poll(() => page.locator("#microphone-status").textContent(), { timeout: 15_000 }).toMatch(/ended after \d+ bytes/);

    const { frames, close } = await follower.drain(15_000);
    expect(close.code).toBe(1000);
    const end = frames.findLast((frame) => "text" in frame && frame.text.type === "stream_end");
    const bytes = Buffer.concat([(first as { binary: Buffer }).binary, ...payloadBytes(frames)]);
    expect(end).toMatchObject({ text: { total_bytes: bytes.length } });
    // Every chunk exactly once and in order: the recording is one well-formed WebM with opus audio.
    const file = join(work, `${streamId}.webm`);
    writeFileSync(file, bytes);
    const ffprobe = requireTool("ffprobe", "install it with `apt-get install -y ffmpeg`");
    const probed = JSON.parse(
      execFileSync(ffprobe, ["-v", "error", "-show_entries", "stream=codec_name:format=format_name", "-of", "json", file], { encoding: "utf8" }),
    ) as { streams: { codec_name: string }[]; format: { format_name: string } };
    expect(probed.streams[0]?.codec_name).toBe("opus");
    expect(probed.format.format_name).toContain("webm");
    const decoded = execFileSync("ffmpeg", ["-v", "error", "-i", file, "-f", "null", "-"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    expect(decoded).toBe("");
  });

  it("feeds the microphone into a flow whose agent reads a stream pin: the audio-meter example meters it live", async () => {
    const admin = meshClients({ url: mesh.url, apiKey: adminKey });
    await registerExample(admin, "audio-meter");
    const user = await browser.newPage();
    await user.goto(relay.url);
    await user.getByLabel("API key").fill(adminKey);
    await user.getByRole("button", { name: "Sign in" }).click();
    await user.getByRole("link", { name: "Streams" }).click();
    await user.getByRole("button", { name: "Publish microphone" }).click();
    await user.getByRole("button", { name: "Stop publishing" }).waitFor();
    const streamId = (await user.locator("#publish-microphone").getAttribute("data-stream")) ?? "";

    await user.getByRole("link", { name: "Run a flow" }).click();
    await user.locator("#flow-pick").selectOption("agent:org.mentatlab.examples.audio.meter");
    await user.locator("#input-meter-audio").selectOption(streamId);
    await user.getByRole("button", { name: "Submit and watch" }).click();
    await user.waitForURL(/#\/runs\/run_/);
    const runId = decodeURIComponent(user.url().split("#/runs/")[1] ?? "");
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    await user.getByRole("link", { name: "Streams" }).click();
    await user.getByRole("button", { name: "Stop publishing" }).click();
    await expect.poll(() => user.locator("#microphone-status").textContent(), { timeout: 15_000 }).toMatch(/ended after \d+ bytes/);

    const orchestrator = admin.orchestrator;
    for await (const event of orchestrator.watchRun({ runId })) {
      if (event.event.case === "runState" && [RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED].includes(event.event.value.state)) break;
    }
    const { run } = await orchestrator.getRun({ runId });
    expect(run?.state, run?.error || run?.nodes.map((node) => node.error).join("; ")).toBe(RunState.SUCCEEDED);
    const levels = run?.nodes[0]?.outputs.levels;
    const measured = levels?.value.case === "json" ? (toJson(ValueSchema, levels.value.value) as { sampleRate: number; durationSeconds: number }) : undefined;
    expect(measured?.sampleRate).toBe(48_000);
    // About two seconds of the fake microphone were recorded while the flow ran.
    expect(measured?.durationSeconds).toBeGreaterThan(1);
    await user.close();
  });
});
