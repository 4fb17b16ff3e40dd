import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { equals } from "@bufbuild/protobuf";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PinValueSchema, type PinValue } from "../../gen/mentatlab/v1/common_pb.js";
import { RunState, type RunEvent } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { main } from "../../services/cli/ctl/main.js";
import { CapturedIo } from "../../services/cli/ctl/testing.js";
import { meshClients, type MeshClients } from "./support/clients.js";
import { startEmbeddedMesh, type EmbeddedMeshUnderTest } from "./support/embedded-mesh.js";
import { failureOf, followRun } from "./support/runs.js";
import { ffmpegFromTestSources } from "../harness/index.js";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const apiKey = "mlk_e2e_once_0123456789abcdef";

/** The `--input` bindings each example flow is run with; a flow added without an entry fails the test. */
const flowInputs: Readonly<Record<string, (scratch: string) => Promise<string[]>>> = {
  "image-thumbnail-describe": async (scratch) => {
    const path = join(scratch, "picture.png");
    await sharp({ create: { width: 320, height: 200, channels: 3, background: "#2060c0" } })
      .png()
      .toFile(path);
    return [`thumbnail.image=@${path}`];
  },
  "python-text-stats": async () => ["stats.text=One mesh. Many agents! Agents in any language."],
  "text-tts-analysis": async () => ["tts.text=Every output once"],
  "video-clip-describe": async (scratch) => {
    const path = join(scratch, "clip.mp4");
    await ffmpegFromTestSources(["testsrc=duration=1:size=320x240:rate=10"], ["-c:v", "libx264", "-pix_fmt", "yuv420p", path]);
    return [`clip.video=@${path}`];
  },
};

const exampleFlows = readdirSync(join(repo, "examples/flows"))
  .filter((file) => file.endsWith(".yaml"))
  .map((file) => file.slice(0, -".yaml".length));

/** Output events per node attempt and pin, e.g. `thumbnail#1 thumbnail`, with the values shown. */
function outputsByAttempt(events: readonly RunEvent[]): Map<string, PinValue[]> {
  const attempts = new Map<string, number>();
  const seen = new Map<string, PinValue[]>();
  for (const event of events) {
    if (event.event.case === "nodeState") attempts.set(event.nodeId, event.event.value.attempt);
    if (event.event.case !== "agent" || event.event.value.event.case !== "output") continue;
    const { pin, value } = event.event.value.event.value;
    const key = `${event.nodeId}#${attempts.get(event.nodeId) ?? 0} ${pin}`;
    seen.set(key, [...(seen.get(key) ?? []), value!]);
  }
  return seen;
}

describe("every example flow reports each output once per attempt", () => {
  let mesh: EmbeddedMeshUnderTest;
  let clients: MeshClients;

  async function ctl(args: string[]) {
    const io = new CapturedIo({ MENTATLAB_URL: mesh.url, MENTATLAB_API_KEY: apiKey, PATH: process.env.PATH }, mesh.scratchDir);
    const code = await main(["node", "mentatctl", ...args], io);
    return { code, stdout: io.stdoutText, stderr: io.stderrText };
  }

  beforeAll(async () => {
    mesh = await startEmbeddedMesh("e2e-once-", apiKey, "olga@ws-once");
    clients = meshClients(mesh);
    for (const agent of readdirSync(join(repo, "examples/agents"), { withFileTypes: true }).filter((entry) => entry.isDirectory())) {
      const registered = await ctl(["agents", "register", join(repo, "examples/agents", agent.name, "manifest.yaml")]);
      expect(registered.code, registered.stderr).toBe(0);
    }
  }, 60_000);
  afterAll(() => mesh?.close());

  it("has inputs for every example flow", () => {
    expect(Object.keys(flowInputs).sort()).toEqual([...exampleFlows].sort());
  });

  it.each(exampleFlows)(
    "%s: in WatchRun, GetRun, `mentatctl run --watch` and `mentatctl runs get`",
    async (name) => {
      const inputs = (await flowInputs[name]?.(mesh.scratchDir)) ?? [];
      const watched = await ctl(["run", join(repo, "examples/flows", `${name}.yaml`), "--watch", ...inputs.flatMap((binding) => ["--input", binding])]);
      const runId = /run (run_\S+) submitted/.exec(watched.stderr)?.[1];
      if (!runId) throw new Error(`mentatctl printed no run id:\n${watched.stderr}`);

      const { run, events } = await followRun(clients, runId);
      expect(run.state, failureOf(run)).toBe(RunState.SUCCEEDED);
      expect(watched.code, watched.stderr).toBe(0);

      const outputs = outputsByAttempt(events);
      expect(outputs.size).toBeGreaterThan(0);
      for (const [key, values] of outputs) expect(values.length, `output ${key} in WatchRun`).toBe(1);

      // GetRun holds the very value each output event showed, and no output the events did not show.
      for (const node of run.nodes) {
        for (const [pin, value] of Object.entries(node.outputs)) {
          const shown = outputs.get(`${node.nodeId}#${node.attempt} ${pin}`);
          expect(shown, `GetRun output ${node.nodeId}.${pin} was never in WatchRun`).toBeDefined();
          expect(equals(PinValueSchema, shown![0]!, value), `GetRun output ${node.nodeId}.${pin}`).toBe(true);
        }
        const shownPins = [...outputs.keys()].filter((key) => key.startsWith(`${node.nodeId}#${node.attempt} `)).map((key) => key.split(" ")[1]);
        expect(shownPins.sort()).toEqual(Object.keys(node.outputs).sort());
      }

      // The CLI shows each output line once, live and in the final summary.
      const outputLines = watched.stdout.split("\n").filter((line) => /^#\d+ \S+ \S+ {2}output /.test(line));
      const outputLineKeys = outputLines.map((line) => line.replace(/^#\d+ \S+ /, ""));
      expect(outputLineKeys.length).toBe(outputs.size);
      expect(new Set(outputLineKeys).size, watched.stdout).toBe(outputLineKeys.length);

      const got = await ctl(["runs", "get", runId]);
      expect(got.code, got.stderr).toBe(0);
      const summaryLines = got.stdout.split("\n").filter((line) => /^ {2}\S+\.\S+ = /.test(line));
      expect(summaryLines.length).toBe(Object.keys(run.outputs).length);
      expect(new Set(summaryLines).size, got.stdout).toBe(summaryLines.length);
      writeFileSync(join(mesh.scratchDir, `${name}.txt`), watched.stdout);
    },
    120_000,
  );
});
