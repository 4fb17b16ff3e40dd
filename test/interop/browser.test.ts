import { build } from "esbuild";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type RunningServer } from "../../services/server/server.js";
import { launchChromium } from "../harness/index.js";
import type { TransportReport } from "./browser/page.js";
import { expectedUsage, startInteropTarget, type InteropTarget } from "./target.js";

let pageDir: string;
let pageServer: RunningServer;
let target: InteropTarget;
let browser: Browser;

beforeAll(async () => {
  pageDir = await mkdtemp(join(tmpdir(), "interop-page-"));
  await build({
    entryPoints: [join(import.meta.dirname, "browser", "page.ts")],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    outfile: join(pageDir, "page.js"),
    logLevel: "silent",
  });
  await writeFile(
    join(pageDir, "index.html"),
    '<!doctype html><meta charset="utf-8"><title>interop</title><body><script type="module" src="page.js"></script>',
  );
  // A second origin: the page comes from this port, the RPCs go to the mesh on another.
  pageServer = await startServer({ port: 0, routes: () => {}, staticDir: pageDir });
  target = await startInteropTarget({ corsAllowedOrigins: [pageServer.url] });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await target?.close();
  await pageServer?.close();
  if (pageDir) await rm(pageDir, { recursive: true, force: true });
});

/** Opens the page from `origin` and waits for its report of both transports. */
async function runPage(origin: string): Promise<Record<string, TransportReport>> {
  const page = await browser.newPage();
  try {
    const query = new URLSearchParams({ target: target.url, authorization: target.authorization, ref: target.object.refId });
    await page.goto(`${origin}/?${query}`);
    await page.waitForFunction(() => window.interop !== undefined, undefined, { timeout: 20_000 });
    return await page.evaluate(() => window.interop ?? {});
  } finally {
    await page.close();
  }
}

describe("headless Chromium with @connectrpc/connect-web, cross-origin", () => {
  it("calls Health.Check/Watch and StorageService.GetUsage/Download over Connect and gRPC-web", async () => {
    const expected: TransportReport = {
      check: "SERVING",
      watchFirst: "SERVING",
      userLimitBytes: expectedUsage.userLimitBytes,
      sha256: target.object.sha256,
      text: target.object.text,
    };
    expect(await runPage(pageServer.url)).toEqual({ connect: expected, grpcWeb: expected });
  });

  it("is refused by CORS from an origin that is not allowed", async () => {
    // Same page, same server, but "localhost" is another origin than the allowed "127.0.0.1".
    const report = await runPage(pageServer.url.replace("127.0.0.1", "localhost"));
    expect(report.connect?.error).toMatch(/unavailable|Failed to fetch/i);
    expect(report.grpcWeb?.error).toMatch(/unavailable|Failed to fetch/i);
    expect(report.connect?.check).toBeUndefined();
  });
});
