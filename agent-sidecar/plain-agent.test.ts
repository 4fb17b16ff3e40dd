import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentEvent } from "../gen/mentatlab/v1/common_pb.js";
import { runPlainAgent } from "./plain-agent.js";

const node = process.execPath;

describe("runPlainAgent", () => {
  let cwd: string;
  beforeAll(async () => {
    cwd = await mkdtemp(join(tmpdir(), "plain-"));
  });
  afterAll(async () => {
    await rm(cwd, { recursive: true, force: true });
  });

  it("feeds the spec on stdin, forwards events in order and returns the result", async () => {
    const script = `
      let input = "";
      process.stdin.on("data", (d) => (input += d)).on("end", () => {
        const { spec } = JSON.parse(input);
        console.log(JSON.stringify({ type: "progress", data: { percent: 50 } }));
        console.log("plain text");
        console.log(JSON.stringify({ result: { echo: spec.text.toUpperCase() } }));
      });`;
    const events: AgentEvent[] = [];
    const exit = await runPlainAgent({
      command: [node, "-e", script],
      env: {},
      cwd,
      stdin: { spec: { text: "hello" }, context: {} },
      onEvent: (event) => {
        events.push(event);
      },
      stderrTailLines: 5,
    });
    expect(exit.exitCode).toBe(0);
    expect(exit.result).toEqual({ echo: "HELLO" });
    expect(events.map((event) => event.event.case)).toEqual(["progress", "log"]);
  });

  it("keeps only the last stderr lines of a crash and its exit code", async () => {
    const script = `for (let i = 1; i <= 30; i++) console.error("line " + i); process.exit(3);`;
    const exit = await runPlainAgent({ command: [node, "-e", script], env: {}, cwd, stdin: {}, onEvent: () => undefined, stderrTailLines: 3 });
    expect(exit.exitCode).toBe(3);
    expect(exit.hasResult).toBe(false);
    expect(exit.stderrTail).toEqual(["line 28", "line 29", "line 30"]);
  });

  it("stops the agent when the signal aborts", async () => {
    const abort = new AbortController();
    const running = runPlainAgent({
      command: [node, "-e", "setInterval(() => {}, 1000)"],
      env: {},
      cwd,
      stdin: {},
      onEvent: () => undefined,
      stderrTailLines: 3,
      signal: abort.signal,
    });
    setTimeout(() => abort.abort(), 100);
    const exit = await running;
    expect(exit.exitSignal).toBe("SIGTERM");
  });

  it("rejects when the program does not exist", async () => {
    await expect(runPlainAgent({ command: [join(cwd, "missing")], env: {}, cwd, stdin: {}, onEvent: () => undefined, stderrTailLines: 1 })).rejects.toThrow(
      /cannot start agent/,
    );
  });
});
