import { execFile, spawn } from "node:child_process";
import { createRequire } from "node:module";
import { promisify } from "node:util";
import { expect } from "vitest";
import { requireTool } from "../harness/index.js";
import type { InteropTarget } from "./target.js";

// The platform binary itself: node_modules/.bin/buf is a wrapper that would outlive a kill().
export const buf = requireTool(
  createRequire(import.meta.url).resolve(`@bufbuild/buf-${process.platform}-${process.arch}/bin/buf`),
  "run `npm ci` to install @bufbuild/buf",
);
const run = promisify(execFile);

/** Runs `buf curl` with `args`; rejects (with its stderr) when it exits non-zero. */
export async function bufCurl(args: string[]): Promise<string> {
  const { stdout } = await run(buf, ["curl", ...args], { timeout: 20_000 });
  return stdout;
}

/** buf curl prints each message as one pretty JSON object. */
export function messages(stdout: string): unknown[] {
  return stdout
    .trim()
    .split(/\n(?=\{)/)
    .filter((part) => part !== "")
    .map((part) => JSON.parse(part) as unknown);
}

/** Runs a never-ending server stream until its first message, then stops buf curl. */
export function firstMessage(args: string[]): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const child = spawn(buf, ["curl", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => child.kill(), 20_000);
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      const end = stdout.indexOf("\n}");
      if (end >= 0) {
        clearTimeout(timer);
        child.kill();
        resolve(JSON.parse(stdout.slice(0, end + 2)));
      }
    });
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.once("exit", (code) => reject(new Error(`buf curl exited ${code} before a message: ${stderr}`)));
  });
}

/** The text of a Download's chunks, as buf curl prints them (bytes in base64). */
function downloadedText(parts: readonly { chunk?: { data: string } }[]): string {
  return parts.flatMap((part) => (part.chunk ? [Buffer.from(part.chunk.data, "base64").toString()] : [])).join("");
}

/** Download of the target's object through buf curl with `protocolArgs`: its header's sha256, then its text. */
export async function expectBufCurlDownload(target: InteropTarget, protocolArgs: readonly string[]): Promise<void> {
  const download = await bufCurl([
    ...protocolArgs,
    "-H",
    `Authorization: ${target.authorization}`,
    "-d",
    JSON.stringify({ refId: target.object.refId }),
    `${target.url}/mentatlab.v1.StorageService/Download`,
  ]);
  const parts = messages(download) as { header?: { sha256: string }; chunk?: { data: string } }[];
  expect(parts[0]?.header?.sha256).toBe(target.object.sha256);
  expect(downloadedText(parts)).toBe(target.object.text);
}

/** GetUsage through buf curl with `protocolArgs` and no key fails as unauthenticated. */
export async function expectBufCurlUnauthenticated(target: InteropTarget, protocolArgs: readonly string[]): Promise<void> {
  const failure = await bufCurl([...protocolArgs, "-d", "{}", `${target.url}/mentatlab.v1.StorageService/GetUsage`]).catch(
    (error: { stderr: string }) => error.stderr,
  );
  expect(failure).toContain("unauthenticated");
}
