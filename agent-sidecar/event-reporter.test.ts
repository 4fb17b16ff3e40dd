import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { afterEach, expect, it } from "vitest";
import { AgentEventSchema, ProgressEventSchema } from "../gen/mentatlab/v1/common_pb.js";
import { NodeState, type RunEvent } from "../gen/mentatlab/v1/orchestrator_pb.js";
import { TestOrchestrator, testAgentManifest, watchAll } from "../services/orchestrator/testing.js";
import { NodeEventReporter } from "./event-reporter.js";

let orch: TestOrchestrator | undefined;
afterEach(async () => {
  await orch?.close();
  orch = undefined;
});

const progress = (percent: number) => create(AgentEventSchema, { event: { case: "progress", value: create(ProgressEventSchema, { percent }) } });

function reportedPercents(events: readonly RunEvent[]): number[] {
  return events.flatMap((e) => (e.event.case === "agent" && e.event.value.event.case === "progress" ? [e.event.value.event.value.percent] : []));
}

it("records a report once when its answer is lost and the reporter sends it again", async () => {
  orch = new TestOrchestrator();
  await orch.register(testAgentManifest("org.test.sleep", "sleep.mjs", "outputs: [{name: text, type: text}]"));
  const client = orch.client();
  const source = { case: "text" as const, value: "graph: {nodes: [{id: s, agent: org.test.sleep, params: {ms: 20000}}]}" };
  const runId = (await client.submitFlow({ source: { source } })).run?.runId ?? "";
  while ((await client.getRun({ runId })).run?.nodes[0]?.state !== NodeState.RUNNING) await new Promise((r) => setTimeout(r, 20));

  // The orchestrator records the first report, then the connection drops before its answer arrives.
  let answersToLose = 1;
  const loseAnswer: Interceptor = (next) => async (req) => {
    const res = await next(req);
    if (answersToLose-- > 0) throw new ConnectError("connection reset before the answer", Code.Unavailable);
    return res;
  };
  const node = { runId, nodeId: "s", attempt: 1 };
  const reporter = new NodeEventReporter(orch.client({ run: node }, [loseAnswer]), node, { attempts: 3, backoff: { initialMs: 1, maxMs: 5 } });
  await reporter.report(progress(10), progress(20));
  await reporter.report(progress(30));
  await client.cancelRun({ runId });
  expect(reportedPercents(await watchAll(client, runId))).toEqual([10, 20, 30]);
});
