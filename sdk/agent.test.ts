import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buffer } from "node:stream/consumers";
import { toJson } from "@bufbuild/protobuf";
import { Code, createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LogLevel, PinValueSchema } from "../gen/mentatlab/v1/common_pb.js";
import { SidecarService } from "../gen/mentatlab/v1/sidecar_pb.js";
import { loadSidecarConfig } from "../agent-sidecar/config.js";
import { createGatewayClients, createGatewayTransport, type GatewayClients } from "../agent-sidecar/gateway-clients.js";
import { startSidecar, type RunningSidecar } from "../agent-sidecar/sidecar.js";
import { startDataPlane, type DataPlane } from "../agent-sidecar/testing.js";
import { uploadFile } from "../agent-sidecar/upload.js";
import { startCuttingProxy } from "../services/cli/ctl/testing.js";
import { Agent, bytes, file, PinType, type AdaptOutputBitrate } from "./index.js";
import { createSidecarTransport } from "./sidecar-transport.js";

describe("Agent, talking to a real sidecar", () => {
  let dir: string;
  let plane: DataPlane;
  let clients: GatewayClients;
  let sidecar: RunningSidecar;
  let agent: Agent;
  let inputBytes: Buffer;
  let feed: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "sdk-"));
    plane = await startDataPlane(join(dir, "data"));
    clients = createGatewayClients(createGatewayTransport(plane.url, plane.runToken("run-sdk", "client")));
    const upstream = await clients.stream.initStream({ payloadType: PinType.TEXT, mimeType: "text/plain", runId: "run-sdk", nodeId: "upstream", pin: "out" });
    feed = upstream.stream?.ref?.streamId ?? "";
    await clients.stream.publishBatch({
      streamId: feed,
      payloads: ["a\n", "b\n", "c\n"].map((line, i) => ({ data: Buffer.from(line), clientSeq: BigInt(i + 1) })),
    });
    await clients.stream.closeStream({ streamId: feed });
    inputBytes = randomBytes(300_000);
    await writeFile(join(dir, "blob.bin"), inputBytes);
    const ref = await uploadFile(clients.storage, join(dir, "blob.bin"), { attempts: 1, backoff: { initialMs: 10, maxMs: 50 } });
    const config = loadSidecarConfig({
      MENTATLAB_RUN_ID: "run-sdk",
      MENTATLAB_NODE_ID: "agent",
      MENTATLAB_GATEWAY_URL: plane.url,
      MENTATLAB_RUN_TOKEN: plane.runToken("run-sdk", "agent"),
      MENTATLAB_SHARED_DIR: join(dir, "shared"),
      MENTATLAB_SIDECAR_LISTEN: "127.0.0.1:0",
      MENTATLAB_INPUTS_JSON: JSON.stringify({
        prompt: { text: "hello" },
        settings: { json: { depth: 2 } },
        blob: toJson(PinValueSchema, { $typeName: "mentatlab.v1.PinValue", value: { case: "media", value: ref } }),
        feed: { stream: { streamId: feed, workspace: "ws-test", payloadType: "PIN_TYPE_TEXT", mimeType: "text/plain" } },
      }),
      MENTATLAB_PARAMS_JSON: '{"mode": "fast"}',
      MENTATLAB_OUTPUT_PINS_JSON: '{"answer": "text", "meta": "json", "small": "binary", "copy": "binary", "big": "binary", "live": "stream"}',
    });
    sidecar = await startSidecar(config);
    agent = Agent.connect({ address: sidecar.address, token: sidecar.token });
  });
  afterAll(async () => {
    await sidecar?.close();
    await plane?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("process() hands text, JSON and files as plain values and publishes what it returns", async () => {
    let seen: unknown;
    await agent.process(async (inputs) => {
      seen = inputs;
      return { answer: `${String(inputs.prompt)} world`, meta: { depth: 3, tags: ["a"] }, small: bytes(new Uint8Array([1, 2, 3])) };
    });
    expect(seen).toMatchObject({ prompt: "hello", settings: { depth: 2 }, blob: join(dir, "shared", "inputs", "blob.bin") });
    expect(await agent.params()).toEqual({ mode: "fast" });
    const outputs = sidecar.outputs.outputs;
    expect(outputs.get("answer")?.value).toEqual({ case: "text", value: "hello world" });
    expect(toJson(PinValueSchema, outputs.get("meta")!)).toEqual({ json: { depth: 3, tags: ["a"] } });
    expect(outputs.get("small")?.value).toEqual({ case: "inlineBytes", value: new Uint8Array([1, 2, 3]) });
    const reported = plane.reported.flatMap((event) => (event.event.case === "output" ? [event.event.value.pin] : []));
    expect(reported).toEqual(expect.arrayContaining(["answer", "meta", "small"]));
  });

  it("processMedia() gives the verified local file and a stream of its bytes; file outputs are uploaded", async () => {
    await agent.processMedia(async (media) => {
      expect(media.pin).toBe("blob");
      expect(media.ref?.sha256).toBe(createHash("sha256").update(inputBytes).digest("hex"));
      expect((await readFile(media.path)).equals(inputBytes)).toBe(true);
      expect((await buffer(media.stream())).equals(inputBytes)).toBe(true);
      return { copy: file(media.path) };
    });
    const copy = sidecar.outputs.outputs.get("copy")?.value;
    expect(copy?.case === "media" && copy.value.sha256).toBe(createHash("sha256").update(inputBytes).digest("hex"));
  });

  it("writeOutput() streams bytes of any size into a stored object", async () => {
    const parts = Array.from({ length: 12 }, () => randomBytes(256 * 1024));
    async function* chunks() {
      yield* parts;
    }
    const value = await agent.writeOutput("big", chunks(), "application/octet-stream");
    expect(value.value.case === "media" && value.value.value.sha256).toBe(createHash("sha256").update(Buffer.concat(parts)).digest("hex"));
  });

  it("streamOutput() publishes live chunks that a subscriber receives in order, then the end", async () => {
    async function* lines() {
      for (let i = 1; i <= 5; i++) yield `line ${i}\n`;
    }
    const { stream, chunksRelayed } = await agent.streamOutput("live", lines(), { mimeType: "text/plain", payloadType: PinType.TEXT });
    expect(chunksRelayed).toBe(5n);
    const received: string[] = [];
    for await (const event of clients.stream.subscribe({ streamId: stream.streamId })) {
      if (event.event.case === "data") received.push(Buffer.from(event.event.value.data).toString("utf8"));
      if (event.event.case === "end") break;
    }
    expect(received).toEqual(["line 1\n", "line 2\n", "line 3\n", "line 4\n", "line 5\n"]);
  });

  it("refuses an undeclared pin or a value its pin cannot carry, saying what to send", async () => {
    await expect(agent.putOutput("nope", "x")).rejects.toMatchObject({
      code: Code.InvalidArgument,
      rawMessage: '"nope" is not an output pin of this agent; its outputs are answer, meta, small, copy, big, live',
    });
    await expect(agent.putOutput("answer", file("/etc/hostname"))).rejects.toMatchObject({
      code: Code.InvalidArgument,
      rawMessage: 'output pin "answer" is text and cannot take file; send text',
    });
    const one = async function* () {
      yield "x";
    };
    await expect(agent.streamOutput("meta", one())).rejects.toMatchObject({ code: Code.InvalidArgument });
    expect(sidecar.outputs.outputs.has("nope")).toBe(false);
  });

  it("followStream() reads a stream input through the sidecar, in order, to its end", async () => {
    const lines: string[] = [];
    for await (const data of agent.followStream("feed")) lines.push(Buffer.from(data).toString("utf8"));
    expect(lines).toEqual(["a\n", "b\n", "c\n"]);
    const resumed: string[] = [];
    for await (const data of agent.followStream("feed", 3n)) resumed.push(Buffer.from(data).toString("utf8"));
    expect(resumed).toEqual(["c\n"]);
    await expect(async () => {
      for await (const _ of agent.followStream("prompt")) void _;
    }).rejects.toThrow("input prompt is not a stream");
  });

  it("reports progress and heartbeats, and aborts its signal once the run is cancelled", async () => {
    const before = plane.reported.length;
    await agent.progress(140, "almost", 2);
    await agent.heartbeat();
    const events = plane.reported
      .slice(before)
      .map((event) => event.event)
      .filter((event) => event.case !== "metric");
    expect(events[0]).toMatchObject({ case: "progress", value: { percent: 100, message: "almost", etaSeconds: 2 } });
    expect(events[1]?.case).toBe("heartbeat");
    expect(agent.signal.aborted).toBe(false);
    plane.cancel("run-sdk");
    await agent.heartbeat();
    expect(agent.signal.aborted).toBe(true);
  });
});

describe("Agent.streamOutput on a slow link, against the real StreamService", () => {
  let dir: string;
  let plane: DataPlane;
  let sidecar: RunningSidecar;
  let agent: Agent;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "sdk-advice-"));
    plane = await startDataPlane(join(dir, "data"), { STREAM_BITRATE_WINDOW_MS: "200" });
    sidecar = await startSidecar(
      loadSidecarConfig({
        MENTATLAB_RUN_ID: "run-advice",
        MENTATLAB_NODE_ID: "tts",
        MENTATLAB_GATEWAY_URL: plane.url,
        MENTATLAB_RUN_TOKEN: plane.runToken("run-advice", "tts"),
        MENTATLAB_SHARED_DIR: join(dir, "shared"),
        MENTATLAB_OUTPUT_PINS_JSON: '{"audio": "stream"}',
      }),
    );
    agent = Agent.connect({ address: sidecar.address, token: sidecar.token });
  });
  afterAll(async () => {
    await sidecar?.close();
    await plane?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("hands the stream service's bitrate advice to onAdaptBitrate and logs it as a warning for the run", async () => {
    // A reader on a 32 KiB/s link follows the stream from the moment it is announced; the producer sends ~2.6 Mbit/s.
    const proxy = await startCuttingProxy(plane.url, { downloadBytesPerSecond: 32 * 1024 });
    const reader = createGatewayClients(createGatewayTransport(proxy.url, plane.runToken("run-advice", "reader")));
    const stop = new AbortController();
    const reading = (async () => {
      for await (const announcement of reader.stream.watchStreams({ filter: { runId: "run-advice" } }, { signal: stop.signal })) {
        const streamId = announcement.stream?.ref?.streamId ?? "";
        for await (const event of reader.stream.subscribe({ streamId }, { signal: stop.signal })) if (event.event.case === "end") return;
      }
    })().catch(() => undefined);
    const chunkBytes = 8 * 1024;
    const total = 120;
    async function* audio() {
      for (let i = 0; i < total; i++) {
        yield randomBytes(chunkBytes);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    }
    const advice: AdaptOutputBitrate[] = [];
    const { stream, chunksRelayed } = await agent.streamOutput("audio", audio(), {
      mimeType: "audio/wav",
      payloadType: PinType.AUDIO,
      onAdaptBitrate: (received) => advice.push(received),
    });
    stop.abort();
    await reading;
    await proxy.close();
    expect(chunksRelayed).toBe(BigInt(total));
    expect(advice.length).toBeGreaterThanOrEqual(1);
    for (const { measuredBitsPerSecond, suggestedBitsPerSecond, reason } of advice) {
      expect(measuredBitsPerSecond).toBeGreaterThan(0n);
      expect(measuredBitsPerSecond).toBeLessThan(2_000_000n);
      expect(suggestedBitsPerSecond).toBeLessThan(measuredBitsPerSecond);
      expect(reason).toMatch(/^subscriber agent reader of run run-advice receives .* lower the encoder bitrate/);
    }
    await sidecar.reporter.flush();
    const warnings = plane.reported.flatMap((event) => (event.event.case === "log" && event.event.value.level === LogLevel.WARN ? [event.event.value] : []));
    expect(warnings.map((warning) => warning.message)).toEqual(advice.map((received) => `output stream of pin audio is too slow: ${received.reason}`));
    expect(warnings[0]?.data).toMatchObject({ stream_id: stream.streamId, pin: "audio" });
  });

  it("rejects with the producer's own error, not the watch's, and ends the stream with stream_error", async () => {
    async function* failing() {
      yield randomBytes(1024);
      throw new Error("encoder crashed");
    }
    const advice: AdaptOutputBitrate[] = [];
    await expect(
      agent.streamOutput("audio", failing(), { mimeType: "audio/wav", payloadType: PinType.AUDIO, onAdaptBitrate: (received) => advice.push(received) }),
    ).rejects.toThrow("encoder crashed");
    const audio = sidecar.outputs.outputs.get("audio")?.value;
    if (audio?.case !== "stream") throw new Error("expected the stream to be published");
    const clients = createGatewayClients(createGatewayTransport(plane.url, plane.runToken("run-advice", "client")));
    let ending: string | undefined;
    for await (const event of clients.stream.subscribe({ streamId: audio.value.streamId })) {
      if (event.event.case === "error") ending = event.event.value.message;
      if (event.event.case === "end") ending = "end";
    }
    expect(ending).toContain("encoder crashed");
    expect(advice).toEqual([]);
  });

  it("refuses to watch a stream this node never opened", async () => {
    const client = createClient(SidecarService, createSidecarTransport({ address: sidecar.address, token: sidecar.token }));
    await expect(async () => {
      for await (const _ of client.watchOutputStream({ streamId: "not-opened" })) void _;
    }).rejects.toMatchObject({ code: Code.NotFound });
  });
});

describe("Agent outputs on pins with declared media constraints, against the real StorageService", () => {
  let dir: string;
  let plane: DataPlane;
  let sidecar: RunningSidecar;
  let agent: Agent;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "sdk-constraints-"));
    plane = await startDataPlane(join(dir, "data"));
    await plane.registerManifest(
      [
        "id: org.example.waveform",
        "version: 1.0.0",
        "command: [waveform]",
        "outputs:",
        "  - name: plot",
        "    type: image",
        "    media: { acceptedMimeTypes: [image/png], maxSizeBytes: 100000 }",
      ].join("\n"),
    );
    sidecar = await startSidecar(
      loadSidecarConfig({
        MENTATLAB_RUN_ID: "run-constraints",
        MENTATLAB_NODE_ID: "waveform",
        MENTATLAB_GATEWAY_URL: plane.url,
        MENTATLAB_RUN_TOKEN: plane.runToken("run-constraints", "waveform"),
        MENTATLAB_SHARED_DIR: join(dir, "shared"),
        MENTATLAB_AGENT_ID: "org.example.waveform",
      }),
    );
    agent = Agent.connect({ address: sidecar.address, token: sidecar.token });
  });
  afterAll(async () => {
    await sidecar?.close();
    await plane?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("gets storage's INVALID_ARGUMENT, naming the pin, for bytes the pin does not accept; nothing is published", async () => {
    async function* chunks(total: number) {
      for (let sent = 0; sent < total; sent += 64 * 1024) yield randomBytes(Math.min(64 * 1024, total - sent));
    }
    await expect(agent.writeOutput("plot", chunks(200_000), "image/png")).rejects.toMatchObject({
      code: Code.InvalidArgument,
      rawMessage: `output pin "plot" refused by storage: declared size 200000 bytes is over the pin's 100000-byte limit`,
    });
    await expect(agent.putOutput("plot", bytes(new TextEncoder().encode("not a picture"), "text/plain"))).rejects.toMatchObject({
      code: Code.InvalidArgument,
      rawMessage: `output pin "plot" refused by storage: declared mime_type "text/plain" is not accepted by the pin, which takes image/png`,
    });
    expect(sidecar.outputs.outputs.has("plot")).toBe(false);
  });
});
