import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { RunState } from "../../../gen/mentatlab/v1/orchestrator_pb.js";
import { TestOrchestrator, text, watchAll } from "../../../services/orchestrator/testing.js";

const here = import.meta.dirname;
const orch = new TestOrchestrator();
afterAll(() => orch.close());

describe("example no-op agent and flow", () => {
  it("registers from its manifest and runs the example flow", async () => {
    // The manifest's working_dir is relative to the repository root; tests run from anywhere.
    const manifest = readFileSync(resolve(here, "manifest.yaml"), "utf8")
      .replace("workingDir: examples/agents/noop", `workingDir: ${here}`)
      .replace("[node,", `[${JSON.stringify(process.execPath)},`);
    await orch.register(manifest);
    const client = orch.client();
    const { run } = await client.submitFlow({
      source: { source: { case: "text", value: readFileSync(resolve(here, "flow.yaml"), "utf8") } },
      inputs: { "first.text": text("hello") },
    });
    await watchAll(client, run?.runId ?? "");
    const done = (await client.getRun({ runId: run?.runId ?? "" })).run;
    expect(done?.state).toBe(RunState.SUCCEEDED);
    expect(done?.outputs["second.text"]?.value.value).toBe("hello");
  });
});
