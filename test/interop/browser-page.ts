import { build } from "esbuild";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { expect } from "vitest";
import { startServer } from "../../services/server/server.js";
import type { TransportReport } from "./browser/page.js";
import { expectedUsage, type InteropTarget } from "./target.js";

/** The interop page (browser/page.ts, bundled) served from an origin of its own. */
export interface InteropPageServer {
  readonly url: string;
  close(): Promise<void>;
}

/** Bundles the page and serves it on a second port: the page comes from there, the RPCs go to the mesh. */
export async function startInteropPageServer(): Promise<InteropPageServer> {
  const pageDir = await mkdtemp(join(tmpdir(), "interop-page-"));
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
  const server = await startServer({ port: 0, routes: () => {}, staticDir: pageDir });
  return {
    url: server.url,
    async close() {
      await server.close();
      await rm(pageDir, { recursive: true, force: true });
    },
  };
}

/** Opens the page from `origin` against `target` and waits for its report of both transports. */
async function runInteropPage(browser: Browser, origin: string, target: InteropTarget): Promise<Record<string, TransportReport>> {
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

/** From an allowed origin, every call of the page succeeds over both transports. */
export async function expectPageCallsSucceed(browser: Browser, origin: string, target: InteropTarget): Promise<void> {
  const expected: TransportReport = {
    check: "SERVING",
    watchFirst: "SERVING",
    userLimitBytes: expectedUsage.userLimitBytes,
    sha256: target.object.sha256,
    text: target.object.text,
  };
  expect(await runInteropPage(browser, origin, target)).toEqual({ connect: expected, grpcWeb: expected });
}

/** From an origin the target does not allow, CORS stops both transports before any call. */
export async function expectPageRefusedByCors(browser: Browser, origin: string, target: InteropTarget): Promise<void> {
  const report = await runInteropPage(browser, origin, target);
  expect(report.connect?.error).toMatch(/unavailable|Failed to fetch/i);
  expect(report.grpcWeb?.error).toMatch(/unavailable|Failed to fetch/i);
  expect(report.connect?.check).toBeUndefined();
}
