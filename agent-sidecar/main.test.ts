import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LogLevel } from "../gen/mentatlab/v1/common_pb.js";
import { SidecarService } from "../gen/mentatlab/v1/sidecar_pb.js";
import { createSidecarTransport } from "../sdk/sidecar-transport.js";
import { plainBridgeScript } from "../services/orchestrator/kubernetes/plain-bridge.js";
import { startDataPlane, type DataPlane } from "./testing.js";

const main = fileURLToPath(new URL("./main.ts", import.meta.url));
const repo = fileURLToPath(new URL("..", import.meta.url));

interface Finished {
  readonly code: number | null;
  readonly stdout: string;
}

function sidecarProcess(args: string[], env: Record<string, string>, stdin?: string) {
  const child = spawn(process.execPath, ["--import", "tsx", main, ...args], {
    cwd: repo,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: [stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"],
  });
  if (stdin !== undefined) child.stdin?.end(stdin);
  let stdout = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  const finished = new Promise<Finished>((resolve) => child.on("close", (code) => resolve({ code, stdout })));
  return { child, finished };
}

describe("agent-sidecar CLI", () => {
  let dir: string;
  let plane: DataPlane;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "sidecar-cli-"));
    plane = await startDataPlane(join(dir, "data"));
  });
  afterAll(async () => {
    await plane?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const nodeEnv = (nodeId: string) => ({
    MENTATLAB_RUN_ID: "run-cli",
    MENTATLAB_NODE_ID: nodeId,
    MENTATLAB_GATEWAY_URL: plane.url,
    MENTATLAB_RUN_TOKEN: plane.runToken("run-cli", nodeId),
  });

  it("under a plain-contract executor: reads the node from stdin, answers with the result line", async () => {
    const agent = `let raw = ""; process.stdin.on("data", (d) => (raw += d)).on("end", () => {
      const { context } = JSON.parse(raw);
      console.log(JSON.stringify({ result: { echo: context.inputs.note.toUpperCase(), token: process.env.MENTATLAB_RUN_TOKEN ?? null } }));
    });`;
    const invocation = JSON.stringify({
      spec: { agent_id: "org.example.echo", params: {} },
      context: { run_id: "run-cli", node_id: "plain", attempt: 1, workspace: "ws-test", inputs: { note: "hi" } },
    });
    const { finished } = sidecarProcess(["--", process.execPath, "-e", agent], nodeEnv("plain"), invocation);
    const { code, stdout } = await finished;
    expect(code).toBe(0);
    expect(JSON.parse(stdout.trim().split("\n").at(-1) ?? "")).toEqual({ result: { echo: "HI", token: null } });
  });

  it("passes a transient failure on as exit 3 with an error line for the executor", async () => {
    const { finished } = sidecarProcess(
      ["--", process.execPath, "-e", 'console.error("upstream busy"); process.exit(3)'],
      nodeEnv("busy"),
      JSON.stringify({ spec: {}, context: {} }),
    );
    const { code, stdout } = await finished;
    expect(code).toBe(3);
    expect(JSON.parse(stdout.trim())).toEqual({ type: "error", message: "agent exited with code 3; last stderr lines:\nupstream busy" });
  });

  it("without a command: serves the SidecarService, announces readiness, and stops on SIGTERM", async () => {
    const shared = join(dir, "serve");
    const token = "pod-token-shared-through-a-secret";
    const { child, finished } = sidecarProcess([], {
      ...nodeEnv("serve"),
      MENTATLAB_SHARED_DIR: shared,
      MENTATLAB_SIDECAR_TOKEN: token,
      MENTATLAB_INPUTS_JSON: '{"note": {"text": "ready"}}',
    });
    let address = "";
    for (let waited = 0; !address && waited < 15_000; waited += 50) {
      address = (await readFile(join(shared, "sidecar.ready"), "utf8").catch(() => "")).trim();
      if (!address) await sleep(50);
    }
    expect(address).toBe(join(shared, "sidecar.sock"));
    const inputs = await createClient(SidecarService, createSidecarTransport({ address, token })).getInputs({});
    expect(inputs.inputs.note?.value).toEqual({ case: "text", value: "ready" });
    child.kill("SIGTERM");
    expect((await finished).code).toBe(0);
  });

  /** A bridged Job's agent container: the plain bridge wrapper running `script`, on the shared dir `dir/name`. */
  function bridgedAgent(name: string, script: string, options: { detached?: boolean } = {}) {
    const shared = join(dir, name);
    const bridge = join(shared, "plain");
    const wrapper = spawn("/bin/sh", ["-c", plainBridgeScript, "agent", process.execPath, script], {
      cwd: repo,
      env: { PATH: process.env.PATH, MENTATLAB_PLAIN_BRIDGE: bridge },
      stdio: "ignore",
      ...options,
    });
    return { shared, bridge, wrapper };
  }

  it("in bridge mode (a Job's native sidecar): runs the agent container's plain agent, lets it exit once delivered, then waits for SIGTERM", async () => {
    const { shared, bridge, wrapper } = bridgedAgent("bridged", "test/agents/echo.mjs");
    const wrapperExit = new Promise<number | null>((resolve) => wrapper.on("exit", (code) => resolve(code)));
    const before = plane.reported.length;
    const { child, finished } = sidecarProcess([], {
      ...nodeEnv("bridged"),
      MENTATLAB_SHARED_DIR: shared,
      MENTATLAB_PLAIN_BRIDGE: bridge,
      MENTATLAB_INPUTS_JSON: '{"text": {"text": "hi"}}',
      MENTATLAB_OUTPUT_PINS_JSON: '{"text": "text", "spec_seen": "json"}',
    });
    expect(await wrapperExit).toBe(0);
    expect(await readFile(join(bridge, "delivered"), "utf8")).toBe("");
    expect((await readFile(join(shared, "sidecar.ready"), "utf8")).trim()).toBe(join(shared, "sidecar.sock"));
    const output = plane.reported.slice(before).find((event) => event.event.case === "output" && event.event.value.pin === "text");
    expect(output?.event.case === "output" && output.event.value.value?.value).toEqual({ case: "text", value: "hi" });
    // A native sidecar that exits on its own while the pod runs is restarted: it waits for SIGTERM.
    await sleep(200);
    expect(child.exitCode).toBeNull();
    child.kill("SIGTERM");
    expect((await finished).code).toBe(0);
  });

  it("in bridge mode, on SIGTERM before the agent exits (Job deadline): reports the node stopped and exits", async () => {
    // Its own process group, so the test can end the agent with it, as deleting the Job would.
    const { shared, bridge, wrapper } = bridgedAgent("bridged-stopped", "test/agents/sleep.mjs", { detached: true });
    const before = plane.reported.length;
    const { child, finished } = sidecarProcess([], {
      ...nodeEnv("bridged-stopped"),
      MENTATLAB_SHARED_DIR: shared,
      MENTATLAB_PLAIN_BRIDGE: bridge,
      MENTATLAB_PARAMS_JSON: '{"ms": 60000}',
    });
    for (
      let waited = 0;
      waited < 15_000 &&
      !(await readFile(join(bridge, "stdout.ndjson")).then(
        () => true,
        () => false,
      ));
      waited += 50
    )
      await sleep(50);
    child.kill("SIGTERM");
    expect((await finished).code).toBe(0);
    const errors = plane.reported.slice(before).filter((event) => event.event.case === "log" && event.event.value.level === LogLevel.ERROR);
    expect(errors.map((event) => event.event.case === "log" && event.event.value.message)).toEqual([
      "the agent was stopped: the run was cancelled or timed out",
    ]);
    process.kill(-wrapper.pid!, "SIGKILL");
  });
});
