import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, it } from "vitest";
import { launchChromium } from "../harness/index.js";
import { expectPageCallsSucceed, expectPageRefusedByCors, startInteropPageServer, type InteropPageServer } from "./browser-page.js";
import { startInteropTarget, type InteropTarget } from "./target.js";

let pageServer: InteropPageServer;
let target: InteropTarget;
let browser: Browser;

beforeAll(async () => {
  pageServer = await startInteropPageServer();
  target = await startInteropTarget({ corsAllowedOrigins: [pageServer.url] });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await target?.close();
  await pageServer?.close();
});

describe("headless Chromium with @connectrpc/connect-web, cross-origin", () => {
  it("calls Health.Check/Watch and StorageService.GetUsage/Download over Connect and gRPC-web", () => expectPageCallsSucceed(browser, pageServer.url, target));

  // Same page, same server, but "localhost" is another origin than the allowed "127.0.0.1".
  it("is refused by CORS from an origin that is not allowed", () => expectPageRefusedByCors(browser, pageServer.url.replace("127.0.0.1", "localhost"), target));
});
