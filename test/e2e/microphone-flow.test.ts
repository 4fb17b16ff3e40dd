import { toJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RunState } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { ffmpegFromTestSources } from "../harness/index.js";
import { initStream, StreamSocket } from "../support/stream-websocket.js";
import { meshClients, type MeshClients } from "./support/clients.js";
import { startEmbeddedMesh, type EmbeddedMeshUnderTest } from "./support/embedded-mesh.js";
import { registerExample } from "./support/examples.js";
import { failureOf, followRun } from "./support/runs.js";

const apiKey = "mlk_e2e_mic_0123456789abcdef";

const meterFlow = [
  "apiVersion: v1",
  "kind: Flow",
  "meta: { id: e2e.microphone-meter, name: Microphone meter }",
  "graph:",
  "  nodes:",
  "    - id: meter",
  "      agent: org.mentatlab.examples.audio.meter",
].join("\n");

describe("a microphone stream published over WebSocket feeds a flow's stream pin", () => {
  let mesh: EmbeddedMeshUnderTest;
  let clients: MeshClients;
  beforeAll(async () => {
    mesh = await startEmbeddedMesh("e2e-mic-", apiKey, "mia@ws-mic");
    clients = meshClients(mesh);
    await registerExample(clients, "audio-meter");
  }, 60_000);
  afterAll(() => mesh?.close());

  it("the audio-meter example follows WebM/Opus live (decoded by ffmpeg) and measures it", async () => {
    // What a browser's MediaRecorder produces: 2 s of Opus in WebM, published in MediaRecorder-sized chunks.
    const recording = join(mesh.scratchDir, "microphone.webm");
    await ffmpegFromTestSources(["sine=frequency=440:duration=2"], ["-c:a", "libopus", "-f", "webm", recording]);
    const bytes = await readFile(recording);

    const init = await initStream(mesh.url, apiKey, { payload_type: "PIN_TYPE_AUDIO", mime_type: "audio/webm;codecs=opus" });
    const ref = (await clients.streams.getStream({ streamId: init.stream_id })).stream?.ref;
    const { run } = await clients.orchestrator.submitFlow({
      source: { source: { case: "text", value: meterFlow } },
      inputs: { "meter.audio": { value: { case: "stream", value: ref! } } },
    });
    const finished = followRun(clients, run!.runId);

    const producer = await StreamSocket.open(init.ws_url);
    producer.sendJson({ type: "stream_start" });
    await producer.until("ack");
    const chunkBytes = init.recommended_chunk_bytes ?? 8192;
    let clientSeq = 0;
    for (let at = 0; at < bytes.length; at += chunkBytes) {
      producer.sendJson({ type: "stream_data", client_seq: ++clientSeq });
      producer.sendBinary(bytes.subarray(at, at + chunkBytes));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    producer.sendJson({ type: "stream_end" });
    expect((await producer.drain()).close.code).toBe(1000);

    const { run: done, events } = await finished;
    expect(done.state, failureOf(done)).toBe(RunState.SUCCEEDED);
    const output = events.flatMap((event) =>
      event.event.case === "agent" && event.event.value.event.case === "output" && event.event.value.event.value.pin === "levels"
        ? [event.event.value.event.value.value]
        : [],
    )[0];
    const levels =
      output?.value.case === "json" ? (toJson(ValueSchema, output.value.value) as { sampleRate: number; durationSeconds: number; rmsDbfs: number }) : undefined;
    expect(levels?.sampleRate).toBe(48_000);
    expect(levels?.durationSeconds).toBeGreaterThan(1.9);
    expect(levels?.durationSeconds).toBeLessThan(2.1);
    // A full-scale-ish sine, not silence.
    expect(levels?.rmsDbfs).toBeGreaterThan(-30);
  }, 60_000);
});
