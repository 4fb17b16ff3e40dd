import { type Browser, chromium } from "playwright-core";
import { requireTool } from "./require.js";

/** Flags every browser test runs Chromium with: headless, and nothing reaching past loopback on its own. */
const baseFlags = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Debian's Chromium driven by playwright-core; `extraFlags` add to the common ones (e.g. a fake microphone). */
export function launchChromium(extraFlags: readonly string[] = []): Promise<Browser> {
  const executablePath = requireTool("/usr/bin/chromium", "install it with `apt-get install -y chromium`");
  return chromium.launch({ executablePath, args: [...baseFlags, ...extraFlags] });
}
