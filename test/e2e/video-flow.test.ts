import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RunState } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { meshClients, type MeshClients } from "./support/clients.js";
import { startEmbeddedMesh, type EmbeddedMeshUnderTest } from "./support/embedded-mesh.js";
import { exampleFlow, registerExample } from "./support/examples.js";
import { downloadVerified, uploadBytes } from "./support/media.js";
import { failureOf, followRun } from "./support/runs.js";
import { ffmpegFromTestSources } from "../harness/index.js";

const apiKey = "mlk_e2e_video_0123456789abcdef";

describe("the video example flow on the embedded default", () => {
  let mesh: EmbeddedMeshUnderTest;
  let clients: MeshClients;

  beforeAll(async () => {
    mesh = await startEmbeddedMesh("e2e-video-", apiKey, "erin@ws-video");
    clients = meshClients(mesh);
    for (const agent of ["video-clip", "image-describe"]) await registerExample(clients, agent);
  });
  afterAll(() => mesh?.close());

  it("transcodes an uploaded clip while streaming it in 64 KiB chunks, and describes its poster frame", async () => {
    const source = join(mesh.scratchDir, "testsrc.mp4");
    await ffmpegFromTestSources(["testsrc=duration=2:size=480x360:rate=15"], ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags", "+faststart", source]);
    const uploaded = await uploadBytes(clients, await readFile(source), "testsrc.mp4", "video/mp4");
    expect(uploaded.metadata).toMatchObject({ width: 480, height: 360 });

    const { run: submitted } = await clients.orchestrator.submitFlow({
      source: { source: { case: "text", value: await exampleFlow("video-clip-describe") } },
      inputs: { "clip.video": { value: { case: "media", value: uploaded } } },
    });
    if (!submitted) throw new Error("submit returned no run");
    const { run: finished } = await followRun(clients, submitted.runId);
    expect(finished.state, failureOf(finished)).toBe(RunState.SUCCEEDED);

    const outputs = finished.nodes.find((node) => node.nodeId === "clip")?.outputs ?? {};
    const live = outputs.clip?.value;
    const stored = outputs.video?.value;
    if (live?.case !== "stream" || stored?.case !== "media") throw new Error("the clip node produced no stream or no stored video");
    const chunks: Uint8Array[] = [];
    for await (const event of clients.streams.subscribe({ streamId: live.value.streamId })) {
      if (event.event.case === "data") chunks.push(event.event.value.data);
      if (event.event.case === "end" || event.event.case === "error") break;
    }
    expect(chunks.length).toBeGreaterThan(0);
    expect(chunks.slice(0, -1).every((chunk) => chunk.length === 64 * 1024)).toBe(true);
    // The live stream and the stored transcode are the same bytes.
    expect(Buffer.concat(chunks).equals(await downloadVerified(clients, stored.value))).toBe(true);
    expect(stored.value.metadata).toMatchObject({ width: 320, height: 240 });

    const description = finished.outputs["poster.summary"]?.value;
    expect(description).toEqual({ case: "text", value: expect.stringMatching(/^320x240 png, mostly #[0-9a-f]{6}$/) });
  });
});
