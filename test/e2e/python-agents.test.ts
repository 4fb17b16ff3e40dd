import { toJson } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PinValueSchema } from "../../gen/mentatlab/v1/common_pb.js";
import { RunState } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { meshClients, type MeshClients, type MeshUnderTest } from "./support/clients.js";
import { startEmbeddedMesh } from "./support/embedded-mesh.js";
import { exampleFlow, registerExample } from "./support/examples.js";
import { failureOf, followRun, oneNodeFlow } from "./support/runs.js";

const apiKey = "mlk_e2e_python_0123456789abcdef";

const grpcFlow = oneNodeFlow("python-grpc", { id: "shout", agent: "org.mentatlab.examples.text.python-grpc" });

describe("Python agents on the embedded default", () => {
  let mesh: MeshUnderTest;
  let clients: MeshClients;

  beforeAll(async () => {
    mesh = await startEmbeddedMesh("e2e-python-", apiKey, "frank@ws-py");
    clients = meshClients(mesh);
    for (const agent of ["python-text-stats", "python-sidecar-grpc"]) await registerExample(clients, agent);
  });
  afterAll(() => mesh?.close());

  it("runs a Python agent on the plain stdin/NDJSON contract, unchanged", async () => {
    const { run: submitted } = await clients.orchestrator.submitFlow({
      source: { source: { case: "text", value: await exampleFlow("python-text-stats") } },
      inputs: { "stats.text": { value: { case: "text", value: "One mesh. Many agents! Agents in any language." } } },
    });
    const { run, events } = await followRun(clients, submitted?.runId ?? "");
    expect(run.state, failureOf(run)).toBe(RunState.SUCCEEDED);
    expect(toJson(PinValueSchema, run.outputs["stats.stats"]!)).toMatchObject({
      json: {
        words: 8,
        sentences: 3,
        top_words: [
          ["agents", 2],
          ["one", 1],
          ["mesh", 1],
        ],
      },
    });
    expect(events.some((event) => event.event.case === "agent" && event.event.value.event.case === "progress")).toBe(true);
  });

  it("runs a Python agent on the sidecar's gRPC API, streaming through it", async () => {
    const { run: submitted } = await clients.orchestrator.submitFlow({
      source: { source: { case: "text", value: grpcFlow } },
      inputs: { "shout.text": { value: { case: "text", value: "hello from python" } } },
    });
    const { run } = await followRun(clients, submitted?.runId ?? "");
    expect(run.state, failureOf(run)).toBe(RunState.SUCCEEDED);
    expect(run.outputs["shout.upper"]?.value).toEqual({ case: "text", value: "HELLO FROM PYTHON" });
    const words = run.outputs["shout.words"]?.value;
    if (words?.case !== "stream") throw new Error("no word stream");
    const received: string[] = [];
    for await (const event of clients.streams.subscribe({ streamId: words.value.streamId })) {
      if (event.event.case === "data") received.push(Buffer.from(event.event.value.data).toString("utf8"));
      if (event.event.case === "end" || event.event.case === "error") break;
    }
    expect(received).toEqual(["hello\n", "from\n", "python\n"]);
  });
});
