import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NodeState, RunState } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { StreamState } from "../../gen/mentatlab/v1/stream_pb.js";
import { storageMediaStore } from "./media-store.js";
import { streamServiceOpener } from "./stream-opener.js";
import { RealServices, stateTrail, TestOrchestrator, testAgentManifest, watchAll } from "./testing.js";

let orch: TestOrchestrator;
let services: RealServices;
beforeAll(async () => {
  const tokens = new TestOrchestrator().runTokens;
  services = await RealServices.start(tokens);
  orch = new TestOrchestrator({ media: storageMediaStore(services.storage), streams: streamServiceOpener(services.streams) });
  await orch.register(
    testAgentManifest(
      "org.test.source",
      "stream-source.mjs",
      "outputs: [{name: live, type: stream, media: {accepted_mime_types: [text/plain]}}]",
      "capabilities: [streaming]",
    ),
    testAgentManifest("org.test.sink", "stream-sink.mjs", "inputs: [{name: live, type: stream, required: true}]\noutputs: [{name: text, type: text}]"),
    testAgentManifest("org.test.png", "write-file.mjs", "outputs: [{name: out, type: image, media: {accepted_mime_types: [image/png]}}]"),
    testAgentManifest(
      "org.test.cached-png",
      "write-file.mjs",
      "outputs: [{name: out, type: image, media: {accepted_mime_types: [image/png]}}]",
      "cacheable: true",
    ),
    testAgentManifest(
      "org.test.wants-png",
      "echo.mjs",
      "inputs: [{name: img, type: image, required: true, media: {accepted_mime_types: [image/png], max_width: 100}}]\noutputs: [{name: text, type: text}]",
    ),
    testAgentManifest(
      "org.test.wants-jpeg",
      "echo.mjs",
      "inputs: [{name: img, type: image, required: true, media: {accepted_mime_types: [image/jpeg]}}]\noutputs: [{name: text, type: text}]",
    ),
  );
});
afterAll(async () => {
  await orch.close();
  await services.close();
});

const flow = (nodes: string, edges: string) => ({ source: { case: "text" as const, value: `kind: Flow\ngraph: {nodes: ${nodes}, edges: ${edges}}` } });

describe("media and stream edges", () => {
  it("starts a stream's consumer while its producer is still running, handing it the live StreamRef", async () => {
    const client = orch.client({ workspace: "ws-test" });
    const runId =
      (
        await client.submitFlow({
          source: flow(`[{id: src, agent: org.test.source, params: {ms: 2500}}, {id: sink, agent: org.test.sink}]`, `[{from: src.live, to: sink.live}]`),
        })
      ).run?.runId ?? "";
    const trail = stateTrail(await watchAll(client, runId));
    expect(trail.indexOf("sink SUCCEEDED 1")).toBeLessThan(trail.indexOf("src SUCCEEDED 1"));
    const run = (await client.getRun({ runId })).run;
    const live = run?.nodes.find((n) => n.nodeId === "src")?.outputs["live"]?.value;
    expect(live?.case).toBe("stream");
    const streamId = live?.case === "stream" ? live.value.streamId : "";
    expect(run?.outputs["sink.text"]?.value.value).toBe(streamId);
    const token = orch.runTokens.mint({ runId, nodeId: "src", attempt: 1, user: "alice", workspace: "ws-test" }, 60);
    const info = await services.streams.getStream({ streamId }, { headers: { authorization: `Bearer ${token}` } });
    expect([info.stream?.runId, info.stream?.nodeId, info.stream?.pin]).toEqual([runId, "src", "live"]);
    // The agent never ended its stream: the orchestrator did once the attempt succeeded.
    expect(info.stream?.state).toBe(StreamState.COMPLETED);
  });

  /** How the output stream `live` of node `src` ended: its last event's error message, or "" for stream_end. */
  async function howLiveEnded(runId: string): Promise<string> {
    const client = orch.client({ workspace: "ws-test" });
    const live = (await client.getRun({ runId })).run?.nodes[0]?.outputs["live"]?.value;
    const streamId = live?.case === "stream" ? live.value.streamId : "";
    const token = orch.runTokens.mint({ runId, nodeId: "src", attempt: 1, user: "alice", workspace: "ws-test" }, 60);
    let last;
    for await (const event of services.streams.subscribe({ streamId }, { headers: { authorization: `Bearer ${token}` } })) last = event.event;
    return last?.case === "error" ? last.value.message : "";
  }

  it("ends with stream_error the output stream a failed attempt left open, saying why", async () => {
    const client = orch.client({ workspace: "ws-test" });
    const runId = (await client.submitFlow({ source: flow(`[{id: src, agent: org.test.source, params: {ms: 10, fail: true}}]`, "[]") })).run?.runId ?? "";
    await watchAll(client, runId);
    expect(await howLiveEnded(runId)).toBe('node "src" attempt 1 failed: agent exited with code 1: gave up before writing anything');
  });

  it("ends the output streams of a cancelled run", async () => {
    const client = orch.client({ workspace: "ws-test" });
    const runId = (await client.submitFlow({ source: flow(`[{id: src, agent: org.test.source, params: {ms: 20000}}]`, "[]") })).run?.runId ?? "";
    while ((await client.getRun({ runId })).run?.nodes[0]?.outputs["live"] === undefined) await new Promise((r) => setTimeout(r, 20));
    await client.cancelRun({ runId, reason: "enough" });
    await watchAll(client, runId);
    await expect.poll(() => howLiveEnded(runId)).toBe(`run "${runId}" was cancelled`);
  });

  it("uploads an agent's file output and checks the MediaRef against each consumer's declared types", async () => {
    const client = orch.client({ workspace: "ws-test" });
    const png = await sharp({ create: { width: 40, height: 30, channels: 3, background: "#f80" } })
      .png()
      .toBuffer();
    const runId =
      (
        await client.submitFlow({
          source: flow(
            `[{id: make, agent: org.test.png, params: {base64: "${png.toString("base64")}", mime_type: image/png}}, {id: ok, agent: org.test.wants-png}, {id: picky, agent: org.test.wants-jpeg}]`,
            `[{from: make.out, to: ok.img}, {from: make.out, to: picky.img}]`,
          ),
        })
      ).run?.runId ?? "";
    await watchAll(client, runId);
    const run = (await client.getRun({ runId })).run;
    const ref = run?.nodes.find((n) => n.nodeId === "make")?.outputs["out"]?.value;
    expect(ref?.case === "media" && [ref.value.mimeType, ref.value.metadata?.width, ref.value.workspace]).toEqual(["image/png", 40, "ws-test"]);
    expect(run?.nodes.map((n) => [n.nodeId, NodeState[n.state]])).toEqual([
      ["make", "SUCCEEDED"],
      ["ok", "SUCCEEDED"],
      ["picky", "FAILED"],
    ]);
    expect(run?.state).toBe(RunState.FAILED);
    expect(run?.error).toMatch(/^node "picky" failed: image .* does not fit input "img": type image\/png is not one of image\/jpeg$/);
  });

  it("reuses a cached node's stored output while the object exists, and runs the agent again once it is gone", async () => {
    const client = orch.client({ workspace: "ws-test" });
    const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: "#0a0" } })
      .png()
      .toBuffer();
    const submit = async () => {
      const runId =
        (
          await client.submitFlow({
            source: flow(`[{id: make, agent: org.test.cached-png, params: {base64: "${png.toString("base64")}", mime_type: image/png}}]`, "[]"),
          })
        ).run?.runId ?? "";
      await watchAll(client, runId);
      const run = (await client.getRun({ runId })).run;
      expect(run?.state).toBe(RunState.SUCCEEDED);
      return { runId, node: run?.nodes[0] };
    };
    const first = await submit();
    const hit = await submit();
    expect([hit.node?.reused?.runId, hit.node?.attempt]).toEqual([first.runId, 0]);
    const out = first.node?.outputs["out"]?.value;
    const refId = out?.case === "media" ? out.value.id : "";
    const token = orch.runTokens.mint({ runId: first.runId, nodeId: "make", attempt: 1, user: "alice", workspace: "ws-test" }, 60);
    await services.storage.delete({ refId }, { headers: { authorization: `Bearer ${token}` } });
    // The entry outlived its object: a miss, and the agent makes (and stores) the image again.
    const rerun = await submit();
    expect([rerun.node?.reused, rerun.node?.attempt]).toEqual([undefined, 1]);
  });
});
