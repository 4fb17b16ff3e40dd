import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RunState } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { StreamAnnouncementKind, type StreamEvent, type WatchStreamsResponse } from "../../gen/mentatlab/v1/stream_pb.js";
import { meshClients, type MeshClients, type MeshUnderTest } from "./support/clients.js";
import { exampleFlow, registerExample } from "./support/examples.js";
import { downloadVerified, uploadBytes } from "./support/media.js";
import { failureOf, followRun } from "./support/runs.js";

/** Reads a stream from the start until stream_end or stream_error. */
async function readStream(clients: MeshClients, streamId: string): Promise<StreamEvent[]> {
  const events: StreamEvent[] = [];
  for await (const event of clients.streams.subscribe({ streamId, afterSeq: 0n })) {
    events.push(event);
    if (event.event.case === "end" || event.event.case === "error") break;
  }
  return events;
}

/**
 * The seed's two sequence diagrams, verbatim, against a mesh started by `start` — run once on the
 * embedded default and once on the distributed processes with Redis and the S3 server.
 */
export function describeSeedDiagrams(name: string, start: () => Promise<MeshUnderTest>): void {
  describe(`seed sequence diagrams on ${name}`, () => {
    let mesh: MeshUnderTest;
    let clients: MeshClients;

    beforeAll(async () => {
      mesh = await start();
      clients = meshClients(mesh);
      for (const agent of ["image-thumbnail", "image-describe", "tts", "audio-meter", "audio-analysis"]) await registerExample(clients, agent);
    });
    afterAll(async () => {
      await mesh?.close();
    });

    it("1. multimodal: upload → ref → flow → agent 1 → result ref → agent 2 → stream + final refs → verified bytes", async () => {
      // A client uploads an image and gets a ref.
      const png = await sharp({ create: { width: 640, height: 400, channels: 3, background: "#c03020" } })
        .png()
        .toBuffer();
      const uploaded = await uploadBytes(clients, png, "sunset.png", "image/png");
      expect(uploaded).toMatchObject({ mimeType: "image/png", sizeBytes: BigInt(png.length) });

      // It submits a flow with that ref: thumbnail (agent 1) → describe (agent 2).
      const { run: submitted } = await clients.orchestrator.submitFlow({
        source: { source: { case: "text", value: await exampleFlow("image-thumbnail-describe") } },
        inputs: { "thumbnail.image": { value: { case: "media", value: uploaded } } },
      });
      if (!submitted) throw new Error("submit returned no run");

      // Agent 2 streams its findings; the client follows that stream while the run goes on.
      const watched = watchForStream(clients, submitted.runId, "describe");
      // Awaited below; a failing run must not leave it as an unhandled rejection at teardown.
      watched.catch(() => undefined);
      const { run, events } = await followRun(clients, submitted.runId);
      expect(run.state, failureOf(run)).toBe(RunState.SUCCEEDED);

      // Agent 1 downloaded, processed and uploaded its result; the orchestrator passed that ref to agent 2.
      const thumbnailOutput = run.nodes.find((node) => node.nodeId === "thumbnail")?.outputs.thumbnail?.value;
      if (thumbnailOutput?.case !== "media") throw new Error("agent 1 returned no result ref");
      const thumbnailRef = thumbnailOutput.value;
      expect(thumbnailRef).toMatchObject({ mimeType: "image/png", workspace: uploaded.workspace });
      expect(thumbnailRef.id).not.toBe(uploaded.id);

      // The client receives the stream: every finding in order, then the end.
      const streamEvents = await readStream(clients, (await watched).stream?.ref?.streamId ?? "");
      expect(streamEvents[0]?.event.case).toBe("start");
      expect(streamEvents.at(-1)?.event.case).toBe("end");
      const findings = streamEvents
        .flatMap((event) => (event.event.case === "data" ? [Buffer.from(event.event.value.data).toString("utf8")] : []))
        .join("")
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line) as { aspect: string; width?: number; height?: number });
      expect(findings.map((finding) => finding.aspect)).toEqual(["geometry", "colour", "texture"]);
      expect(streamEvents.map((event) => event.seq)).toEqual(streamEvents.map((_, i) => BigInt(i + 1)));

      // And the run's final refs: it downloads the result bytes and checks them.
      const description = run.outputs["describe.description"]?.value;
      if (description?.case !== "json") throw new Error("no description output");
      const thumbnailBytes = await downloadVerified(clients, thumbnailRef);
      const metadata = await sharp(thumbnailBytes).metadata();
      expect([metadata.format, metadata.width, metadata.height]).toEqual(["png", 96, 60]);
      expect(findings[0]).toMatchObject({ width: 96, height: 60 });
      expect(events.some((event) => event.event.case === "agent" && event.event.value.event.case === "progress")).toBe(true);
    });

    it("2. streaming: agent inits a stream → id + URL → start → data[n] → end; a watcher is told, follows, gets every chunk, is told it completed", async () => {
      const { run: submitted } = await clients.orchestrator.submitFlow({
        source: { source: { case: "text", value: await exampleFlow("text-tts-analysis") } },
        inputs: { "tts.text": { value: { case: "text", value: "The mesh streams speech in eight kilobyte chunks while it is spoken." } } },
      });
      if (!submitted) throw new Error("submit returned no run");
      const announcements = collectAnnouncements(clients, submitted.runId);
      announcements.catch(() => undefined);
      const { run } = await followRun(clients, submitted.runId);
      expect(run.state, failureOf(run)).toBe(RunState.SUCCEEDED);

      const audio = run.nodes.find((node) => node.nodeId === "tts")?.outputs.audio?.value;
      if (audio?.case !== "stream") throw new Error("tts produced no stream ref");
      expect(audio.value.ssePath).toContain(audio.value.streamId);

      const seen = await announcements;
      const forAudio = seen.filter((announcement) => announcement.stream?.ref?.streamId === audio.value.streamId);
      expect(forAudio.map((announcement) => announcement.kind)).toEqual([StreamAnnouncementKind.AVAILABLE, StreamAnnouncementKind.ENDED]);

      const events = await readStream(clients, audio.value.streamId);
      expect(events.map((event) => event.event.case)).toEqual(["start", ...events.slice(1, -1).map(() => "data"), "end"]);
      expect(events.map((event) => event.seq)).toEqual(events.map((_, i) => BigInt(i + 1)));
      const chunks = events.flatMap((event) => (event.event.case === "data" ? [event.event.value.data] : []));
      expect(chunks.length).toBeGreaterThan(2);

      // The stream's URL serves the same events as Server-Sent Events, base64 for audio.
      const sse = await fetch(new URL(audio.value.ssePath, mesh.url), {
        headers: { authorization: `Bearer ${mesh.apiKey}` },
        signal: AbortSignal.timeout(10_000),
      });
      const sseEvents = (await sse.text()).split("\n\n").filter((block) => block.startsWith("id: "));
      expect(sseEvents.map((block) => /^event: (.+)$/m.exec(block)?.[1])).toEqual(["stream_start", ...chunks.map(() => "stream_data"), "stream_end"]);
      const sseBytes = Buffer.concat(sseEvents.slice(1, -1).map((block) => Buffer.from(/^data: (.*)$/m.exec(block)?.[1] ?? "", "base64")));
      expect(sseBytes.equals(Buffer.concat(chunks))).toBe(true);
      expect(chunks.slice(0, -1).every((chunk) => chunk.length === 8192)).toBe(true);

      // Every chunk arrived: the streamed bytes are the stored recording (whose WAV sizes were filled in after).
      const speech = run.nodes.find((node) => node.nodeId === "tts")?.outputs.speech?.value;
      if (speech?.case !== "media") throw new Error("tts stored no speech");
      const stored = await downloadVerified(clients, speech.value);
      const streamed = Buffer.concat(chunks);
      expect(streamed.length).toBe(stored.length);
      expect(streamed.subarray(44).equals(stored.subarray(44))).toBe(true);
      const analysis = run.outputs["analysis.analysis"]?.value;
      if (analysis?.case !== "json") throw new Error("no analysis output");
      const duration = analysis.value.kind.case === "structValue" ? analysis.value.kind.value.fields.durationSeconds?.kind.value : undefined;
      expect(duration).toBeCloseTo((stored.length - 44) / 2 / 22050, 1);

      // A downstream agent followed the same stream live (a stream edge) and saw every byte of it.
      const levels = run.outputs["meter.levels"];
      const metered = levels?.value.case === "json" && levels.value.value.kind.case === "structValue" ? levels.value.value.kind.value.fields : {};
      expect(metered.bytes?.kind.value).toBe(streamed.length);
      expect(metered.chunks?.kind.value).toBe(chunks.length);
      expect(metered.durationSeconds?.kind.value).toBeCloseTo(duration as number, 2);
    });
  });
}

/** Resolves with the first announcement of a stream of `runId`'s node `nodeId` becoming available. */
async function watchForStream(clients: MeshClients, runId: string, nodeId: string): Promise<WatchStreamsResponse> {
  for await (const announcement of clients.streams.watchStreams({ filter: { runId } })) {
    if (announcement.kind === StreamAnnouncementKind.AVAILABLE && announcement.stream?.nodeId === nodeId) return announcement;
  }
  throw new Error(`no stream of ${nodeId} was announced`);
}

/** Every announcement for a run's streams until each one announced has ended. */
async function collectAnnouncements(clients: MeshClients, runId: string): Promise<WatchStreamsResponse[]> {
  const seen: WatchStreamsResponse[] = [];
  const open = new Set<string>();
  for await (const announcement of clients.streams.watchStreams({ filter: { runId } })) {
    seen.push(announcement);
    const id = announcement.stream?.ref?.streamId ?? "";
    if (announcement.kind === StreamAnnouncementKind.AVAILABLE) open.add(id);
    else open.delete(id);
    if (open.size === 0) break;
  }
  return seen;
}
