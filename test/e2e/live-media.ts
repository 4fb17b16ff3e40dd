import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RunState } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { StreamAnnouncementKind } from "../../gen/mentatlab/v1/stream_pb.js";
import { main } from "../../services/cli/ctl/main.js";
import { CapturedIo } from "../../services/cli/ctl/testing.js";
import { buildWeb } from "../../web/build.js";
import { launchChromium, makeTempDir, requireTool } from "../harness/index.js";
import { generatePythonStubs, type PythonStubs } from "../interop/python-stubs.js";
import { meshClients, type MeshClients, type MeshUnderTest } from "./support/clients.js";
import { registerManifest } from "./support/examples.js";
import { failureOf, followRun, oneNodeFlow } from "./support/runs.js";

const run = promisify(execFile);
const kinds = ["text", "audio", "video", "opus"] as const;
type Kind = (typeof kinds)[number];
/** Long enough that a client starting after the streams opened is still well inside them. */
const seconds = 6;

const flow = oneNodeFlow("live-media", { id: "live", agent: "org.mentatlab.tests.live-media", params: { seconds } });

/** What one client saw of one stream: when its first payload was visible to the user, and everything it got. */
interface Seen {
  readonly firstAtMs: number;
  readonly sha256?: string;
}

/**
 * Proof of liveness, per media kind: mentatctl, a Python grpcio client and the web UI in Chromium
 * each have the first chunk (and the browser is playing it) before the producing agent has finished,
 * by the agent's own clock-stamped marker. `start` brings up the mesh with the given extra environment.
 */
export function describeLiveMedia(name: string, start: (extraEnv: Record<string, string>) => Promise<MeshUnderTest>): void {
  describe(`live media on ${name}`, () => {
    let mesh: MeshUnderTest;
    let clients: MeshClients;
    let stubs: PythonStubs;
    let browser: Browser;
    let context: BrowserContext;
    const work = makeTempDir("live-media-");

    beforeAll(async () => {
      requireTool("/usr/bin/ffmpeg", "install it with `apt-get install -y ffmpeg`");
      stubs = await generatePythonStubs(["mentatlab/v1/stream.proto"]);
      const webDir = await buildWeb(join(work, "dist"));
      mesh = await start({ MENTATLAB_WEB_DIR: webDir });
      clients = meshClients(mesh);
      await registerManifest(clients, fileURLToPath(new URL("./agents/live-media/manifest.yaml", import.meta.url)));
      browser = await launchChromium();
      context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(mesh.url);
      await page.getByLabel("API key").fill(mesh.apiKey);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.locator("#app").waitFor({ state: "visible" });
      await page.close();
    }, 120_000);
    afterAll(async () => {
      await browser?.close();
      await mesh?.close();
      await stubs?.remove();
    });

    it("reaches mentatctl, Python grpcio and the browser while the agent is still producing", async () => {
      const { run: submitted } = await clients.orchestrator.submitFlow({ source: { source: { case: "text", value: flow } } });
      const runId = submitted?.runId ?? "";
      const streamIds = await openedStreams(clients, runId);

      const followers = kinds.map((kind) => ({
        kind,
        all: Promise.all([
          followWithCtl(mesh, work, kind, streamIds[kind]),
          followWithPython(mesh, stubs, streamIds[kind]),
          followInBrowser(mesh, context, kind, streamIds[kind]),
        ]),
      }));
      // Awaited below; a failed run must not leave them as unhandled rejections meanwhile.
      for (const follower of followers) follower.all.catch(() => undefined);
      const { run: finished } = await followRun(clients, runId);
      expect(finished.state, failureOf(finished)).toBe(RunState.SUCCEEDED);
      const marker = finished.outputs["live.finished"]?.value;
      if (marker?.case !== "json") throw new Error("the agent returned no finished marker");
      const finishedAtMs = Number(marker.value.kind.case === "structValue" ? marker.value.kind.value.fields.finished_at_ms?.kind.value : undefined);
      expect(finishedAtMs).toBeGreaterThan(0);

      for (const follower of followers) {
        const [ctl, python, shown] = await follower.all;
        const what = `${follower.kind}: mentatctl first byte ${ctl.firstAtMs}, python ${python.firstAtMs}, browser ${shown.firstAtMs}, playing ${shown.playingAtMs}; agent finished ${finishedAtMs}`;
        expect.soft(ctl.firstAtMs, what).toBeLessThan(finishedAtMs);
        expect.soft(python.firstAtMs, what).toBeLessThan(finishedAtMs);
        expect.soft(shown.firstAtMs, what).toBeLessThan(finishedAtMs);
        expect.soft(shown.playingAtMs, what).toBeLessThan(finishedAtMs);
        // Every client got the same bytes.
        expect.soft(python.sha256, what).toBe(ctl.sha256);
        // The web UI plays media soon after its first byte: about a second on a quiet machine (one
        // fragment of video to buffer); the bound is loose for busy CI machines, and still far below
        // the stream's length that a player waiting for the end would take.
        expect.soft(shown.playingAtMs - shown.firstAtMs, what).toBeLessThan(3_000);
        expect.soft(shown.advanced, what).toBe(true);
      }
      // What mentatctl saved is the whole stream: every token, and media ffprobe reads as `seconds` long.
      expect(readFileSync(join(work, "text.out"), "utf8")).toBe(
        Array.from({ length: seconds * 10 }, (_, i) => `token ${String(i + 1).padStart(2, "0")} `).join(""),
      );
      for (const file of ["audio.wav", "video.mp4", "opus.webm"]) expect(await durationOf(join(work, file)), file).toBeCloseTo(seconds, 0);
    }, 120_000);
  });
}

/** The run's three streams, by pin, as WatchStreams announces them. */
async function openedStreams(clients: MeshClients, runId: string): Promise<Record<Kind, string>> {
  const found: Partial<Record<Kind, string>> = {};
  for await (const announcement of clients.streams.watchStreams({ filter: { runId } }, { signal: AbortSignal.timeout(30_000) })) {
    const info = announcement.stream;
    if (announcement.kind === StreamAnnouncementKind.AVAILABLE && info?.ref && (kinds as readonly string[]).includes(info.pin))
      found[info.pin as Kind] = info.ref.streamId;
    if (kinds.every((kind) => found[kind])) return found as Record<Kind, string>;
  }
  throw new Error(`run ${runId} opened only ${Object.keys(found).join(", ")}`);
}

/** `mentatctl streams follow <id> -o <kind file>`, in-process; the first byte is when the file first grows. */
async function followWithCtl(mesh: MeshUnderTest, work: string, kind: Kind, streamId: string): Promise<Seen> {
  const out = join(work, { text: "text.out", audio: "audio.wav", video: "video.mp4", opus: "opus.webm" }[kind]);
  const io = new CapturedIo({ MENTATLAB_URL: mesh.url, MENTATLAB_API_KEY: mesh.apiKey }, work);
  const following = main(["node", "mentatctl", "streams", "follow", streamId, "-o", out], io);
  const firstAtMs = await firstTime(() => sizeOf(out) > 0, following);
  expect(await following, io.stderrText).toBe(0);
  return { firstAtMs, sha256: sha256Of(readFileSync(out), kind === "audio") };
}

/** test/e2e/support/python_follow.py with Debian's grpcio, straight at the gateway. */
async function followWithPython(mesh: MeshUnderTest, stubs: PythonStubs, streamId: string): Promise<Seen> {
  const script = fileURLToPath(new URL("./support/python_follow.py", import.meta.url));
  const { stdout } = await run(stubs.python, [script, stubs.dir, new URL(mesh.url).host, `Bearer ${mesh.apiKey}`, streamId], { timeout: 60_000 });
  const report = JSON.parse(stdout) as { first_data_at_ms: number | null; end_at_ms: number | null; sha256: string; error?: string };
  expect(report.error).toBeUndefined();
  if (report.first_data_at_ms === null) throw new Error(`python saw no data on ${streamId}`);
  return { firstAtMs: report.first_data_at_ms, sha256: report.sha256 };
}

/**
 * The streams page in its own tab: the user clicks Follow; the first byte is when the latency readout
 * appears; playing is when the text shows (text) or the player's clock has moved (audio, video), and
 * `advanced` says it kept moving afterwards.
 */
async function followInBrowser(
  mesh: MeshUnderTest,
  context: BrowserContext,
  kind: Kind,
  streamId: string,
): Promise<Seen & { playingAtMs: number; advanced: boolean }> {
  const page = await context.newPage();
  const faults: string[] = [];
  page.on("console", (message) => message.type() === "error" && faults.push(message.text()));
  page.on("pageerror", (error) => faults.push(error.message));
  try {
    await page.goto(`${mesh.url}/#/streams`);
    await page.getByRole("button", { name: `Follow stream ${streamId}` }).click();
    const firstAtMs = await pageTime(page, () => (document.getElementById("follow-latency")?.textContent ?? "").startsWith("first byte"));
    const position = playedSeconds(kind);
    const playingAtMs = await pageTime(page, position, 0);
    const before = await page.evaluate(position);
    await sleep(500);
    const after = await page.evaluate(position);
    expect(faults).toEqual([]);
    expect(await page.locator("#follow-latency").textContent()).toMatch(/^first byte \d+ ms after following · now \d+ ms behind the producer$/);
    return { firstAtMs, playingAtMs, advanced: after > before };
  } finally {
    await page.close();
  }
}

/** What the user sees advance: characters of text shown, seconds of WAV audio played, the media element's clock. */
function playedSeconds(kind: Kind): () => number {
  if (kind === "text") return () => document.getElementById("follow-text")?.textContent?.length ?? 0;
  if (kind === "audio") return () => Number(/Playing live: ([\d.]+) s/.exec(document.querySelector("#follow-media .live-audio")?.textContent ?? "")?.[1] ?? 0);
  if (kind === "video") return () => document.querySelector<HTMLVideoElement>("#follow-media video")?.currentTime ?? 0;
  return () => document.querySelector<HTMLAudioElement>("#follow-media audio")?.currentTime ?? 0;
}

/** The browser's clock (the same machine's) when `condition` first holds, checked every animation frame. */
async function pageTime(page: Page, condition: () => boolean | number, above?: number): Promise<number> {
  const handle = await page.waitForFunction(
    ([source, threshold]) => {
      const value = (new Function(`return (${source})()`) as () => boolean | number)();
      return (threshold === null ? value === true : typeof value === "number" && value > threshold) && Date.now();
    },
    [condition.toString(), above ?? null] as const,
    { timeout: 30_000 },
  );
  return Number(await handle.jsonValue());
}

/** Polls every 10 ms until `ready`, and fails if `settled` ends first without it. */
async function firstTime(ready: () => boolean, settled: Promise<unknown>): Promise<number> {
  let done = false;
  void settled.finally(() => (done = true));
  for (;;) {
    if (ready()) return Date.now();
    if (done) throw new Error("the follow ended before its first byte was seen");
    await sleep(10);
  }
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** Of the bytes as streamed: mentatctl rewrote a WAV's two size fields, which the other clients see as sent. */
function sha256Of(bytes: Buffer, wav: boolean): string {
  const copy = Buffer.from(bytes);
  if (wav) {
    copy.writeUInt32LE(0xffff_ffff, 4);
    copy.writeUInt32LE(0xffff_ffff, 40);
  }
  return createHash("sha256").update(copy).digest("hex");
}

/** By ffprobe: the container's duration, or where its last packet ends when a live WebM names none. */
async function durationOf(path: string): Promise<number> {
  const { stdout } = await run("ffprobe", ["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path]);
  if (Number.isFinite(Number(stdout))) return Number(stdout);
  const packets = await run("ffprobe", ["-v", "error", "-show_entries", "packet=pts_time,duration_time", "-of", "csv=p=0", path], {
    maxBuffer: 16 * 1024 * 1024,
  });
  return Math.max(
    ...packets.stdout
      .trim()
      .split("\n")
      .map((line) =>
        line
          .split(",")
          .map(Number)
          .reduce((a, b) => a + b, 0),
      ),
  );
}
