import { create } from "@bufbuild/protobuf";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { AgentEventSchema, OutputEventSchema } from "../../../gen/mentatlab/v1/common_pb.js";
import { RunState } from "../../../gen/mentatlab/v1/orchestrator_pb.js";
import { type FakeKubeApiServer, startFakeKubeApiServer } from "../../../test/harness/fake-kube-apiserver.js";
import { stateTrail, TestOrchestrator, text, watchAll } from "../testing.js";
import { jobName } from "./job-name.js";
import { runTokenKey } from "./job-spec.js";
import { KubernetesExecutor } from "./kubernetes-executor.js";
import { testConfig } from "./testing.js";

const namespace = "agents";
const manifest =
  "id: org.test.podecho\nversion: 1.0.0\nimage: registry.example/podecho:1\ninputs: [{name: text, type: text, required: true}]\noutputs: [{name: text, type: text}]";
const flow = (retry: string) => ({
  source: {
    source: {
      case: "text" as const,
      value: `apiVersion: v1\nkind: Flow\nmeta: {id: t}\ngraph:\n  nodes: [{id: a, agent: org.test.podecho${retry}}]\n  edges: []`,
    },
  },
});

let server: FakeKubeApiServer;
let orch: TestOrchestrator;
afterEach(async () => {
  await orch.close();
  await server.stop();
});

async function start(): Promise<void> {
  server = await startFakeKubeApiServer();
  orch = new TestOrchestrator({ executor: new KubernetesExecutor({ kubeConfig: server.kubeConfig(namespace), config: testConfig({ watchRetryMaxMs: 50 }) }) });
  await orch.register(manifest);
}

/** Plays the agent-sidecar of one pod: reports an output with the run scope its Secret grants, as ReportNodeEvents does. */
async function reportOutput(runId: string, attempt: number, value: string): Promise<void> {
  const name = jobName(runId, "a", attempt);
  for (let i = 0; !server.secret(namespace, name); i++) {
    if (i > 300) throw new Error(`no Secret for ${name}`);
    await sleep(10);
  }
  expect(server.secret(namespace, name)?.stringData?.[runTokenKey]).toBeTruthy();
  const sidecar = orch.client({ run: { runId, nodeId: "a", attempt } });
  const output = create(AgentEventSchema, { event: { case: "output", value: create(OutputEventSchema, { pin: "text", value: text(value) }) } });
  const { cancelled } = await sidecar.reportNodeEvents({ runId, nodeId: "a", attempt, events: [output] });
  expect(cancelled).toBe(false);
}

describe("a run on Kubernetes Jobs", () => {
  it("succeeds with the outputs the pod's sidecar reported", async () => {
    await start();
    const client = orch.client();
    server.scriptDefault({ outcome: { result: "hold" } });
    const { run } = await client.submitFlow({ ...flow(""), inputs: { "a.text": text("hi") } });
    const runId = run?.runId ?? "";
    await reportOutput(runId, 1, "hi from the pod");
    server.finishJob(namespace, jobName(runId, "a", 1), { result: "succeed" });
    const events = await watchAll(client, runId);
    expect(stateTrail(events)).toEqual(["run PENDING", "run RUNNING", "a RUNNING 1", "a SUCCEEDED 1", "run SUCCEEDED"]);
    const final = (await client.getRun({ runId })).run;
    expect(final?.state).toBe(RunState.SUCCEEDED);
    expect(final?.outputs["a.text"]?.value).toEqual({ case: "text", value: "hi from the pod" });
  });

  it("retries a transient failure (exit code 3) with a new Job for the next attempt", async () => {
    await start();
    const client = orch.client();
    server.scriptDefault({ outcome: { result: "hold" } });
    const { run } = await client.submitFlow({ ...flow(", retry: {max_attempts: 2, initial_delay: 10ms}"), inputs: { "a.text": text("hi") } });
    const runId = run?.runId ?? "";
    const first = jobName(runId, "a", 1);
    const second = jobName(runId, "a", 2);
    // Its pod must be running first: the exit code that makes the failure transient is the pod's.
    for (let i = 0; !server.job(namespace, first)?.status?.active; i++) {
      if (i > 300) throw new Error("the first Job never ran");
      await sleep(10);
    }
    server.finishJob(namespace, first, { result: "fail", exitCode: 3 });
    await reportOutput(runId, 2, "second time lucky");
    server.finishJob(namespace, second, { result: "succeed" });
    const events = await watchAll(client, runId);
    expect(stateTrail(events)).toEqual(["run PENDING", "run RUNNING", "a RUNNING 1", "a RETRYING 1", "a RUNNING 2", "a SUCCEEDED 2", "run SUCCEEDED"]);
    expect((await client.getRun({ runId })).run?.outputs["a.text"]?.value).toEqual({ case: "text", value: "second time lucky" });
  });

  it("deletes the running Job when the run is cancelled", async () => {
    await start();
    const client = orch.client();
    server.scriptDefault({ outcome: { result: "hold" } });
    const { run } = await client.submitFlow({ ...flow(""), inputs: { "a.text": text("hi") } });
    const runId = run?.runId ?? "";
    const name = jobName(runId, "a", 1);
    for (let i = 0; !server.job(namespace, name)?.status?.active; i++) {
      if (i > 300) throw new Error("the Job never ran");
      await sleep(10);
    }
    await client.cancelRun({ runId });
    for (let i = 0; server.job(namespace, name); i++) {
      if (i > 300) throw new Error("the Job was not deleted");
      await sleep(10);
    }
    expect((await client.getRun({ runId })).run?.state).toBe(RunState.CANCELLED);
  });
});
