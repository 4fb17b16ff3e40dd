import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, makeTempDir, requireTool } from "../../../test/harness/index.js";
import { startEmbedded, type EmbeddedMesh } from "../../mesh/embedded.js";
import { CapturedIo, startCuttingProxy, type CuttingProxy } from "./testing.js";
import { main } from "./main.js";

const exec = promisify(execFile);
const repoRoot = fileURLToPath(new URL("../../..", import.meta.url));
const mentatctl = join(repoRoot, "bin", "mentatctl.mjs");
const apiKey = "mlk_terminal_0123456789abcdef";
const objectBytes = 24 * 1024 * 1024;

/**
 * mentatctl in a real terminal (tmux), as a person sees it: the server behind it stops mid-download
 * and comes back on the same port and data dir.
 */
describe("mentatctl in a terminal while the server restarts", () => {
  const tmuxSocket = `mentatlab-test-${process.pid}`;
  let work: string;
  let port: number;
  let mesh: EmbeddedMesh | undefined;
  let proxy: CuttingProxy;
  let refId: string;
  let original: Buffer;

  const startMesh = async () => {
    mesh = await startEmbedded({
      port,
      dataDir: join(work, "data"),
      env: { PATH: process.env.PATH, MENTATLAB_API_KEYS: `${apiKey}=tess@ws-term:admin`, MENTATLAB_SHUTDOWN_GRACE_MS: "200" },
    });
  };
  const stopMesh = async () => {
    await mesh?.close();
    mesh = undefined;
  };
  const tmux = (...args: string[]) => exec("tmux", ["-L", tmuxSocket, ...args]);
  /** The terminal's screen and scrollback, as plain text lines. */
  const screen = async (session: string) => (await tmux("capture-pane", "-p", "-J", "-S", "-", "-t", session)).stdout;
  const waitForScreen = async (session: string, pattern: RegExp, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = await screen(session);
      if (pattern.test(text)) return text;
      if (Date.now() > deadline) throw new Error(`terminal never showed ${pattern}; it shows:\n${text}`);
      await sleep(100);
    }
  };
  /** Runs `command` in a new 200-column terminal and leaves its screen up after it exits. */
  const runInTerminal = async (session: string, command: string, env: Record<string, string>) => {
    const assignments = Object.entries(env).map(([name, value]) => `${name}='${value}'`);
    await tmux("new-session", "-d", "-s", session, "-x", "200", "-y", "50", `env ${assignments.join(" ")} ${command}; echo "EXIT=$?"; sleep 600`);
  };
  const partBytes = (path: string) => (existsSync(`${path}.part`) ? statSync(`${path}.part`).size : 0);
  const waitForPart = async (path: string, atLeast: number) => {
    const deadline = Date.now() + 20_000;
    while (partBytes(path) < atLeast) {
      if (Date.now() > deadline) throw new Error(`${path}.part never reached ${atLeast} bytes`);
      await sleep(50);
    }
  };

  beforeAll(async () => {
    requireTool("tmux", "apt-get install -y tmux");
    work = makeTempDir("ctl-terminal");
    port = await freePort();
    await startMesh();
    original = randomBytes(objectBytes);
    writeFileSync(join(work, "big.bin"), original);
    const io = new CapturedIo({ MENTATLAB_URL: `http://127.0.0.1:${port}`, MENTATLAB_API_KEY: apiKey }, work);
    expect(await main(["node", "mentatctl", "--output", "json", "upload", "big.bin"], io), io.stderrText).toBe(0);
    refId = (JSON.parse(io.stdoutText) as { ref: { id: string } }).ref.id;
    // Slow enough that the server can be stopped while the bytes are still coming.
    proxy = await startCuttingProxy(`http://127.0.0.1:${port}`, { downloadBytesPerSecond: 4 * 1024 * 1024 });
  }, 60_000);

  afterAll(async () => {
    await tmux("kill-server").catch(() => undefined);
    await proxy?.close();
    await stopMesh();
  });

  it("waits out a restart longer than a few seconds, notes each retry on its own line above the bar, and ends with the verified line", async () => {
    const out = join(work, "copy.bin");
    await runInTerminal("waits", `${mentatctl} download ${refId} -o ${out}`, { MENTATLAB_URL: proxy.url, MENTATLAB_API_KEY: apiKey });
    await waitForPart(out, 2 * 1024 * 1024);
    await stopMesh();
    await waitForScreen("waits", /interrupted/, 10_000);
    // Longer than the five attempts (~4 s) it used to give up after.
    await sleep(7_000);
    await startMesh();
    const text = await waitForScreen("waits", /EXIT=\d+/, 30_000);

    expect(text).toContain("EXIT=0");
    expect(readFileSync(out).equals(original)).toBe(true);
    const lines = text.split("\n");
    const notes = lines.filter((line) => line.includes("interrupted"));
    expect(notes.length).toBeGreaterThan(1);
    // Each note is a line of its own: it starts the line and no bar is drawn into it.
    for (const note of notes) expect(note).toMatch(new RegExp(`^download of ${refId} interrupted \\(\\[\\w+\\] .*\\); retrying in [\\d.]+ s$`));
    const verified = lines.findIndex((line) => /^wrote 24\.0 MiB to .*copy\.bin \(sha256 [0-9a-f]{64} verified\)$/.test(line));
    expect(verified, text).toBeGreaterThan(0);
    // The finished bar stays on screen, above the verified line.
    expect(
      lines.slice(0, verified).some((line) => /^download \S+ \[.*\] 100% \| 24\.0 MiB\/24\.0 MiB/.test(line)),
      text,
    ).toBe(true);
  }, 90_000);

  it("gives up after MENTATLAB_RETRY_SECONDS and prints the exact command that continues from the .part file", async () => {
    const out = join(work, "second.bin");
    const env = { MENTATLAB_URL: proxy.url, MENTATLAB_API_KEY: apiKey, MENTATLAB_RETRY_SECONDS: "3" };
    await runInTerminal("gives-up", `${mentatctl} download ${refId} -o ${out}`, env);
    await waitForPart(out, 2 * 1024 * 1024);
    await stopMesh();
    const text = await waitForScreen("gives-up", /EXIT=\d+/, 30_000);
    await startMesh();

    expect(text).toContain("EXIT=1");
    const kept = partBytes(out);
    expect(kept).toBeGreaterThan(0);
    const lines = text.split("\n");
    const hint = lines.find((line) => line.startsWith("download stopped with "));
    expect(hint, text).toBe(
      `download stopped with ${(kept / 1024 / 1024).toFixed(1)} MiB kept in ${out}.part; to continue: mentatctl download ${refId} -o ${out} --resume`,
    );
    // The last failure is whichever connection loss came last (connect-node reports a reset socket as ABORTED).
    expect(
      lines.some((line) => /^error: \[(Unavailable|Canceled|Aborted)\] /.test(line)),
      text,
    ).toBe(true);

    // The printed command, run as printed, finishes the download from the kept bytes.
    const command = hint!.slice(hint!.indexOf("to continue: ") + "to continue: ".length).replace(/^mentatctl /, `${mentatctl} `);
    await runInTerminal("continues", command, env);
    const continued = await waitForScreen("continues", /EXIT=\d+/, 30_000);
    expect(continued, continued).toContain("EXIT=0");
    expect(readFileSync(out).equals(original)).toBe(true);
  }, 90_000);
});
