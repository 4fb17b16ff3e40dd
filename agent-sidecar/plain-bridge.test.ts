import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { access, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { toJson } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LogLevel, PinValueSchema, type AgentEvent } from "../gen/mentatlab/v1/common_pb.js";
import { NodeState } from "../gen/mentatlab/v1/orchestrator_pb.js";
import { buildJob } from "../services/orchestrator/kubernetes/job-spec.js";
import { testConfig, testTask } from "../services/orchestrator/kubernetes/testing.js";
import { TestOrchestrator, testAgentManifest, watchAll } from "../services/orchestrator/testing.js";
import { loadSidecarConfig } from "./config.js";
import { bridgeFiles, markBridgeDelivered } from "./plain-bridge.js";
import { runBridgedAgentWithSidecar, type AgentOutcome } from "./sidecar.js";
import { startDataPlane, type DataPlane } from "./testing.js";

const repo = new URL("..", import.meta.url).pathname;
/** The Job's shared volume, which the tests map onto a directory of their own. */
const podSharedDir = "/mentatlab/shared";

/** The node a pod's sidecar reports for, and the gateway it reports through. */
interface NodeOfRun {
  readonly on: DataPlane;
  readonly runId: string;
  readonly nodeId: string;
}

interface BridgedRun {
  readonly outcome: AgentOutcome;
  /** Exit code of the agent container (the wrapper). */
  readonly containerExit: number | null;
  /** Events the sidecar reported for the node. */
  readonly events: AgentEvent[];
  readonly sharedDir: string;
}

describe("a plain agent behind the file bridge, as in a Kubernetes Job", () => {
  let dir: string;
  let plane: DataPlane;
  let nodeCount = 0;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "bridge-"));
    plane = await startDataPlane(join(dir, "data"));
  });
  afterAll(async () => {
    await plane?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /**
   * Starts the agent container exactly as the Job builder specifies it (its argv and env, the shared
   * volume mapped onto a local directory) as one child process; the sidecar is the caller's to start,
   * with the environment `sidecarEnv` gives.
   */
  function startPod(command: string[], manifestEnv: Record<string, string>, node: NodeOfRun = { on: plane, runId: "run-1", nodeId: `node${++nodeCount}` }) {
    const { nodeId } = node;
    const sharedDir = join(dir, nodeId);
    const task = testTask({ nodeId });
    task.agent.command = command;
    task.agent.env = manifestEnv;
    const job = buildJob(task, testConfig());
    const local = (value: string) => value.replaceAll(podSharedDir, sharedDir);
    const [agent] = job.spec!.template.spec!.containers;
    const sidecar = job.spec!.template.spec!.initContainers![0]!;
    const argv = agent!.command!;
    const agentEnv = Object.fromEntries((agent!.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, local(e.value!)]));
    const bridgeDir = local(sidecar.env!.find((e) => e.name === "MENTATLAB_PLAIN_BRIDGE")!.value!);

    // The agent container starts first here, to show it waits for the sidecar's spec.
    const container = spawn(argv[0]!, argv.slice(1), { cwd: repo, env: { PATH: process.env.PATH, ...agentEnv }, stdio: "ignore" });
    const containerExited = once(container, "exit") as Promise<[number | null]>;
    const reportedBefore = plane.reported.length;
    const events = () => plane.reported.slice(reportedBefore);
    const sidecarEnv = (env: Record<string, string>) => sidecarEnvOf(node, sharedDir, bridgeDir, env);
    return { container, containerExited, events, sharedDir, bridgeDir, sidecarEnv };
  }

  /** The sidecar's environment in the Job, with the shared volume mapped onto `sharedDir`. */
  function sidecarEnvOf({ on, runId, nodeId }: NodeOfRun, sharedDir: string, bridgeDir: string, env: Record<string, string>): Record<string, string> {
    return {
      MENTATLAB_RUN_ID: runId,
      MENTATLAB_NODE_ID: nodeId,
      MENTATLAB_GATEWAY_URL: on.url,
      MENTATLAB_RUN_TOKEN: on.runToken(runId, nodeId),
      MENTATLAB_SHARED_DIR: sharedDir,
      MENTATLAB_PLAIN_BRIDGE: bridgeDir,
      ...env,
    };
  }

  /** Runs a pod (see startPod) with the sidecar in bridge mode in process. */
  async function runAsJob(
    command: string[],
    sidecarEnv: Record<string, string>,
    whileRunning?: (events: () => AgentEvent[], sharedDir: string) => Promise<void>,
    manifestEnv: Record<string, string> = {},
  ): Promise<BridgedRun> {
    const { container, containerExited, events, sharedDir, bridgeDir, ...pod } = startPod(command, manifestEnv);
    const config = loadSidecarConfig(pod.sidecarEnv(sidecarEnv));
    const running = runBridgedAgentWithSidecar(config, config.plainBridge, { pollMs: 20 });
    await whileRunning?.(events, sharedDir);
    const outcome = await running;
    // The agent container outlives the agent until the sidecar says it delivered everything.
    expect(container.exitCode).toBeNull();
    await markBridgeDelivered(bridgeDir);
    const [containerExit] = await containerExited;
    return { outcome, containerExit, events: events(), sharedDir };
  }

  const node = process.execPath;

  /** Lets the agent finish (the `go` file) under the successor sidecar given, and waits until the pod is done. */
  async function finishWithSuccessor(pod: ReturnType<typeof startPod>, successor: ChildProcess): Promise<void> {
    await writeFile(join(pod.sharedDir, "go"), "");
    await until(() =>
      access(join(pod.bridgeDir, bridgeFiles.delivered)).then(
        () => true,
        () => false,
      ),
    );
    successor.kill("SIGTERM");
    expect(await once(successor, "exit")).toEqual([0, null]);
    expect(await pod.containerExited).toEqual([0, null]);
  }

  it("runs the echo agent: spec in, events forwarded, final result turned into outputs", async () => {
    const run = await runAsJob([node, "test/agents/echo.mjs"], {
      MENTATLAB_INPUTS_JSON: JSON.stringify({ text: { text: "hello" } }),
      MENTATLAB_PARAMS_JSON: JSON.stringify({ suffix: "!" }),
      MENTATLAB_OUTPUT_PINS_JSON: JSON.stringify({ text: "text", spec_seen: "json" }),
    });
    expect(run.outcome.failure).toBeUndefined();
    expect(run.containerExit).toBe(0);
    expect(run.outcome.outputs.text?.value).toEqual({ case: "text", value: "hello!" });
    expect(toJson(PinValueSchema, run.outcome.outputs.spec_seen!)).toEqual({ json: { agent_id: "", params: { suffix: "!" } } });
    const cases = run.events.map((event) => event.event.case);
    expect(cases.slice(0, 4)).toEqual(["log", "progress", "log", "metric"]);
    expect(run.events[2]?.event.value).toMatchObject({ message: "not json: kept as a log line" });
    const outputs = run.events.filter((event) => event.event.case === "output").map((event) => event.event.case === "output" && event.event.value.pin);
    expect(outputs.sort()).toEqual(["spec_seen", "text"]);
  });

  it("gives the agent INPUT_SPEC and INPUT_CONTEXT, as a wrapped agent gets them", async () => {
    const run = await runAsJob(
      [node, "test/agents/echo.mjs"],
      {
        MENTATLAB_INPUTS_JSON: JSON.stringify({ text: { text: "from env" } }),
        MENTATLAB_PARAMS_JSON: JSON.stringify({ suffix: "?" }),
        MENTATLAB_OUTPUT_PINS_JSON: JSON.stringify({ text: "text", spec_seen: "json" }),
      },
      undefined,
      { FROM_ENV: "1" },
    );
    expect(run.outcome.failure).toBeUndefined();
    expect(run.outcome.outputs.text?.value).toEqual({ case: "text", value: "from env?" });
  });

  it("forwards events while the agent still runs, reads a last line without a newline, uploads a result file from the shared dir", async () => {
    const script = `
      const fs = require("node:fs"), path = require("node:path");
      const { context } = JSON.parse(fs.readFileSync(0, "utf8"));
      process.stdout.write(JSON.stringify({ type: "progress", data: { percent: 30 } }) + "\\n");
      const go = path.join(context.shared_dir, "go");
      const wait = () => fs.existsSync(go) ? finish() : setTimeout(wait, 10);
      const finish = () => {
        const out = path.join(context.work_dir, "out.bin");
        fs.writeFileSync(out, Buffer.alloc(100_000, 7));
        process.stdout.write(JSON.stringify({ result: { blob: { path: out, mime_type: "application/octet-stream" } } }));
      };
      wait();`;
    const run = await runAsJob([node, "-e", script], { MENTATLAB_OUTPUT_PINS_JSON: JSON.stringify({ blob: "binary" }) }, async (events, sharedDir) => {
      for (let waited = 0; waited < 5_000 && !events().some((event) => event.event.case === "progress"); waited += 10) await sleep(10);
      expect(events().some((event) => event.event.case === "progress")).toBe(true);
      await writeFile(join(sharedDir, "go"), "");
    });
    expect(run.outcome.failure).toBeUndefined();
    const blob = run.outcome.outputs.blob?.value;
    expect(blob?.case).toBe("media");
    expect(blob?.case === "media" && Number(blob.value.sizeBytes)).toBe(100_000);
  });

  it("reports a crash with the agent's exit code and last stderr lines", async () => {
    const run = await runAsJob([node, "test/agents/crash.mjs"], {});
    expect(run.containerExit).toBe(1);
    expect(run.outcome.exitCode).toBe(1);
    expect(run.outcome.failure).toContain("agent exited with code 1");
    expect(run.outcome.failure).toContain("last stderr lines:\nTraceback (most recent call last):\n  agent.py line 3\nValueError: model file missing");
    const errors = run.events.filter((event) => event.event.case === "log" && event.event.value.level === LogLevel.ERROR);
    expect(errors.at(-1)?.event.value).toMatchObject({ message: run.outcome.failure });
  });

  it("reports exit 3 as transient, in the sidecar's outcome and the agent container's exit code", async () => {
    const run = await runAsJob([node, "test/agents/flaky.mjs"], {
      MENTATLAB_PARAMS_JSON: JSON.stringify({ succeed_on: 2 }),
      MENTATLAB_OUTPUT_PINS_JSON: JSON.stringify({ text: "text" }),
    });
    expect(run.containerExit).toBe(3);
    expect(run.outcome.exitCode).toBe(3);
    expect(run.outcome.failure).toContain("agent exited with code 3: busy on attempt 1");
  });

  it("passes a manifest command with quotes, spaces and $(...) through literally", async () => {
    const args = ['it\'s "quoted"', "two  spaces", "$(touch pwned)", "`touch pwned`", "$HOME", "*", "a;b|c&&d", ""];
    const run = await runAsJob([node, "-e", "console.log(JSON.stringify({ result: { argv: process.argv.slice(1) } }))", ...args], {
      MENTATLAB_OUTPUT_PINS_JSON: JSON.stringify({ argv: "json" }),
    });
    expect(run.outcome.failure).toBeUndefined();
    expect(toJson(PinValueSchema, run.outcome.outputs.argv!)).toEqual({ json: args });
    await expect(readFile(join(repo, "pwned"))).rejects.toThrow(/ENOENT/);
    expect(await readFile(join(run.sharedDir, "plain", bridgeFiles.exitCode), "utf8")).toBe("0\n");
  });

  it("resumes after a sidecar killed mid-run where it recorded it reported: every event, output and the result once", async () => {
    // The result comes before the kill and more events after it: a successor must neither lose the
    // result it does not read again nor report again what its predecessor had acknowledged.
    const script = `
      const fs = require("node:fs"), path = require("node:path");
      const { context } = JSON.parse(fs.readFileSync(0, "utf8"));
      const say = (line) => process.stdout.write(JSON.stringify(line) + "\\n");
      say({ type: "progress", data: { percent: 10 } });
      say({ type: "log", message: "before the kill, héhé" });
      say({ type: "output", data: { pin: "early", value: "e" } });
      say({ result: { late: "from the result" } });
      const go = path.join(context.shared_dir, "go");
      const wait = () => fs.existsSync(go) ? finish() : setTimeout(wait, 10);
      const finish = () => {
        say({ type: "progress", data: { percent: 90 } });
        say({ type: "log", message: "after the restart" });
      };
      wait();`;
    const pod = startPod([node, "-e", script], {});
    const env = { PATH: process.env.PATH, ...pod.sidecarEnv({ MENTATLAB_OUTPUT_PINS_JSON: JSON.stringify({ early: "text", late: "text" }) }) };
    // The sidecar as its own process, so it can die as a crashed container does: no goodbye.
    const startSidecar = () => spawn(node, ["--import", "tsx", join(repo, "agent-sidecar/main.ts")], { cwd: repo, env, stdio: "ignore" });
    const stdoutPath = join(pod.bridgeDir, bridgeFiles.stdout);
    const reportedPath = join(pod.bridgeDir, bridgeFiles.reported);

    const first = startSidecar();
    await until(async () => {
      const progress = await readFile(reportedPath, "utf8").catch(() => "{}");
      const { offset } = JSON.parse(progress) as { offset?: number };
      return offset !== undefined && offset > 0 && offset === (await stat(stdoutPath)).size;
    });
    expect(JSON.parse(await readFile(reportedPath, "utf8"))).toMatchObject({ hasResult: true, result: { late: "from the result" } });
    first.kill("SIGKILL");
    await once(first, "exit");
    const beforeRestart = pod.events().length;

    await finishWithSuccessor(pod, startSidecar());

    const events = pod.events();
    expect(beforeRestart).toBe(4);
    const progress = events.flatMap((event) => (event.event.case === "progress" ? [event.event.value.percent] : []));
    expect(progress).toEqual([10, 90]);
    const logs = events.flatMap((event) => (event.event.case === "log" ? [event.event.value.message] : []));
    expect(logs).toEqual(["before the kill, héhé", "output early", "after the restart"]);
    const outputs = events.flatMap((event) => (event.event.case === "output" ? [[event.event.value.pin, event.event.value.value?.value.value]] : []));
    expect(outputs).toEqual([
      ["early", "e"],
      ["late", "from the result"],
    ]);
  });

  it("records every event once in the run when the sidecar dies after an acknowledgement, before recording it", async () => {
    const orch = new TestOrchestrator();
    const mesh = await startDataPlane(join(dir, "mesh-data"), {}, orch.orchestratorImpl);
    try {
      // A sleeping agent holds the node running; the pod below reports as its attempt 1.
      await orch.register(testAgentManifest("org.test.sleep", "sleep.mjs", "outputs: [{name: text, type: text}]"));
      const client = orch.client();
      const source = { case: "text" as const, value: "graph: {nodes: [{id: bridged, agent: org.test.sleep, params: {ms: 60000}}]}" };
      const runId = (await client.submitFlow({ source: { source } })).run?.runId ?? "";
      await until(async () => (await client.getRun({ runId })).run?.nodes[0]?.state === NodeState.RUNNING);
      const script = `
        const fs = require("node:fs"), path = require("node:path");
        const { context } = JSON.parse(fs.readFileSync(0, "utf8"));
        const say = (line) => process.stdout.write(JSON.stringify(line) + "\\n");
        say({ type: "progress", data: { percent: 10 } });
        say({ type: "log", message: "one" });
        say({ type: "progress", data: { percent: 20 } });
        const go = path.join(context.shared_dir, "go");
        const wait = () => fs.existsSync(go) ? finish() : setTimeout(wait, 10);
        const finish = () => {
          say({ type: "progress", data: { percent: 90 } });
          say({ type: "log", message: "after the restart" });
          say({ result: { text: "done" } });
        };
        wait();`;
      const pod = startPod([node, "-e", script], {}, { on: mesh, runId, nodeId: "bridged" });
      const env = { PATH: process.env.PATH, ...pod.sidecarEnv({ MENTATLAB_OUTPUT_PINS_JSON: JSON.stringify({ text: "text" }) }) };
      const startSidecar = (preload: string[]) =>
        spawn(node, [...preload, "--import", "tsx", join(repo, "agent-sidecar/main.ts")], { cwd: repo, env, stdio: "ignore" });
      const reportedPath = join(pod.bridgeDir, bridgeFiles.reported);
      const agentEvents = async () =>
        (await orch.store.events(runId, 0n, 1000)).flatMap((e) => (e.nodeId === "bridged" && e.event.case === "agent" ? [e.event.value] : []));

      const first = startSidecar(["--import", join(repo, "test/support/crash-before-recording.mjs")]);
      expect(await once(first, "exit")).toEqual([null, "SIGKILL"]);
      // The window: the run holds the first line's event, the pod's record says nothing was reported.
      expect((await agentEvents()).some((event) => event.event.case === "progress" && event.event.value.percent === 10)).toBe(true);
      expect(JSON.parse(await readFile(reportedPath, "utf8"))).toMatchObject({ offset: 0, eventSeq: 0 });

      await finishWithSuccessor(pod, startSidecar([]));
      await client.cancelRun({ runId });

      const events = (await watchAll(client, runId)).flatMap((e) => (e.nodeId === "bridged" && e.event.case === "agent" ? [e.event.value] : []));
      const progress = events.flatMap((event) => (event.event.case === "progress" ? [event.event.value.percent] : []));
      expect(progress).toEqual([10, 20, 90]);
      const logs = events.flatMap((event) =>
        event.event.case === "log" && !event.event.value.message.startsWith("sleeping") ? [event.event.value.message] : [],
      );
      expect(logs).toEqual(["one", "after the restart"]);
      expect(events.filter((event) => event.event.case === "output").length).toBe(1);
    } finally {
      await mesh.stop();
      await orch.close();
    }
  });

  it("publishes, after a restart while publishing the result, only the result pins not yet acknowledged", async () => {
    // The bridge dir as a sidecar leaves it when it dies after publishing pin "a" of the result: the
    // agent exited, every line is reported.
    const nodeId = `node${++nodeCount}`;
    const sharedDir = join(dir, nodeId);
    const bridgeDir = join(sharedDir, "plain");
    await mkdir(bridgeDir, { recursive: true });
    const result = { a: "first", b: "second" };
    const stdout = `${JSON.stringify({ type: "progress", data: { percent: 50 } })}\n${JSON.stringify({ result })}\n`;
    await writeFile(join(bridgeDir, bridgeFiles.stdin), "{}\n");
    await writeFile(join(bridgeDir, bridgeFiles.stdout), stdout);
    await writeFile(join(bridgeDir, bridgeFiles.exitCode), "0\n");
    const offset = Buffer.byteLength(stdout);
    await writeFile(
      join(bridgeDir, bridgeFiles.reported),
      JSON.stringify({ offset, result, hasResult: true, errorMessage: "", resultPins: ["a"], reporterId: "r-1", eventSeq: 1 }),
    );

    const reportedBefore = plane.reported.length;
    const config = loadSidecarConfig(
      sidecarEnvOf({ on: plane, runId: "run-1", nodeId }, sharedDir, bridgeDir, { MENTATLAB_OUTPUT_PINS_JSON: JSON.stringify({ a: "text", b: "text" }) }),
    );
    const outcome = await runBridgedAgentWithSidecar(config, bridgeDir, { pollMs: 20 });
    expect(outcome.failure).toBeUndefined();
    const events = plane.reported.slice(reportedBefore);
    expect(events.map((event) => event.event.case === "output" && event.event.value.pin)).toEqual(["b"]);
    expect(JSON.parse(await readFile(join(bridgeDir, bridgeFiles.reported), "utf8"))).toMatchObject({ offset, resultPins: ["a", "b"] });
  });
});

/** Polls `condition` until it holds, for at most 20 s (two sidecar start-ups under load). */
async function until(condition: () => Promise<boolean>): Promise<void> {
  for (let waited = 0; waited < 20_000; waited += 20) {
    if (await condition()) return;
    await sleep(20);
  }
  throw new Error("timed out");
}
