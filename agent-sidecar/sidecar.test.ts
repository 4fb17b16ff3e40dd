import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { toJson } from "@bufbuild/protobuf";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LogLevel, PinValueSchema, type MediaRef } from "../gen/mentatlab/v1/common_pb.js";
import { loadSidecarConfig, type SidecarConfig } from "./config.js";
import { downloadToFile } from "./download.js";
import { createGatewayClients, createGatewayTransport, type GatewayClients } from "./gateway-clients.js";
import { runAgentWithSidecar, startSidecar } from "./sidecar.js";
import { createSidecarTransport } from "../sdk/sidecar-transport.js";
import { SidecarService } from "../gen/mentatlab/v1/sidecar_pb.js";
import { Code, createClient } from "@connectrpc/connect";
import { startDataPlane, type DataPlane } from "./testing.js";
import { uploadFile } from "./upload.js";

const repo = new URL("..", import.meta.url).pathname;
const tsx = join(repo, "node_modules/.bin/tsx");
const backoff = { initialMs: 20, maxMs: 200 };
/** The agents inherit this process's environment, as main.ts hands over `process.env`. */
const inherit = { baseEnv: process.env };

describe("runAgentWithSidecar against the real storage and stream services", () => {
  let dir: string;
  let plane: DataPlane;
  let clients: GatewayClients;
  let nodeCount = 0;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "sidecar-"));
    plane = await startDataPlane(join(dir, "data"));
    clients = createGatewayClients(createGatewayTransport(plane.url, plane.runToken("run-1", "client")));
  });
  afterAll(async () => {
    await plane?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** A sidecar config for a fresh node of a run, as an executor would pass it. */
  function configFor(env: Record<string, string>, runId = "run-1"): SidecarConfig {
    const nodeId = `node${++nodeCount}`;
    return loadSidecarConfig({
      MENTATLAB_RUN_ID: runId,
      MENTATLAB_NODE_ID: nodeId,
      MENTATLAB_GATEWAY_URL: plane.url,
      MENTATLAB_RUN_TOKEN: plane.runToken(runId, nodeId),
      MENTATLAB_SHARED_DIR: join(dir, nodeId),
      ...env,
    });
  }

  async function uploadPng(width: number, height: number): Promise<MediaRef> {
    const path = join(dir, `in-${width}x${height}.png`);
    await sharp({ create: { width, height, channels: 3, background: "#2080c0" } })
      .png()
      .toFile(path);
    return uploadFile(clients.storage, path, { attempts: 1, backoff });
  }

  it("runs an SDK agent: downloads its image, serves it the SidecarService, uploads and reports its output", async () => {
    const input = await uploadPng(400, 200);
    const config = configFor({
      MENTATLAB_INPUTS_JSON: JSON.stringify({ image: toJson(PinValueSchema, { $typeName: "mentatlab.v1.PinValue", value: { case: "media", value: input } }) }),
      MENTATLAB_PARAMS_JSON: '{"max_side": 64}',
      MENTATLAB_OUTPUT_PINS_JSON: '{"thumbnail": "image"}',
    });
    const reportedBefore = plane.reported.length;
    const outcome = await runAgentWithSidecar(config, [tsx, join(repo, "examples/agents/image-thumbnail/agent.ts")], inherit);
    expect(outcome.failure).toBeUndefined();
    expect(outcome.exitCode).toBe(0);
    const thumbnail = outcome.outputs.thumbnail?.value;
    if (thumbnail?.case !== "media") throw new Error(`expected a MediaRef, got ${thumbnail?.case}`);
    expect(thumbnail.value).toMatchObject({ mimeType: "image/png", workspace: "ws-test" });

    const local = join(dir, "thumb-back.png");
    await downloadToFile(clients.storage, thumbnail.value, local, { attempts: 1, backoff });
    expect(await sharp(local).metadata()).toMatchObject({ format: "png", width: 64, height: 32 });

    const events = plane.reported.slice(reportedBefore).map((event) => event.event);
    expect(events.filter((event) => event.case === "progress").map((event) => event.value.percent)).toEqual([10, 90]);
    const output = events.find((event) => event.case === "output");
    expect(output?.case === "output" && output.value.pin).toBe("thumbnail");
  });

  it("runs a plain-contract agent: spec on stdin with local paths, result file uploaded", async () => {
    const input = await uploadPng(10, 10);
    const config = configFor({
      MENTATLAB_INPUTS_JSON: JSON.stringify({
        image: toJson(PinValueSchema, { $typeName: "mentatlab.v1.PinValue", value: { case: "media", value: input } }),
        note: { text: "hello" },
      }),
      MENTATLAB_OUTPUT_PINS_JSON: '{"copy": "binary", "seen": "json"}',
    });
    const script = `
      let raw = ""; process.stdin.on("data", (d) => (raw += d)).on("end", () => {
        const { context } = JSON.parse(raw);
        const fs = require("node:fs");
        const out = require("node:path").join(context.work_dir, "copy.bin");
        fs.copyFileSync(context.inputs.image.path, out);
        console.log(JSON.stringify({ type: "progress", data: { percent: 50 } }));
        console.log(JSON.stringify({ result: { copy: { path: out, mime_type: "image/png" }, seen: { note: context.inputs.note, sha: context.inputs.image.sha256, token: process.env.MENTATLAB_RUN_TOKEN ?? null } } }));
      });`;
    const outcome = await runAgentWithSidecar(config, [process.execPath, "-e", script], inherit);
    expect(outcome.failure).toBeUndefined();
    const copy = outcome.outputs.copy?.value;
    expect(copy?.case === "media" && copy.value.sha256).toBe(input.sha256);
    const seen = outcome.outputs.seen?.value;
    expect(seen?.case === "json" && toJson(PinValueSchema, outcome.outputs.seen!)).toEqual({ json: { note: "hello", sha: input.sha256, token: null } });
  });

  it("reads a plain agent's output pins from its registered manifest when the executor named only the agent", async () => {
    await plane.registerManifest(["id: org.example.shout", "version: 1.0.0", "command: [shout]", "outputs:", "  - name: shout", "    type: text"].join("\n"));
    const config = configFor({ MENTATLAB_AGENT_ID: "org.example.shout" });
    const result = (value: unknown) => [process.execPath, "-e", `console.log(JSON.stringify({ result: ${JSON.stringify(value)} }))`];
    expect((await runAgentWithSidecar(config, result({ shout: "HI" }), inherit)).outputs.shout?.value).toEqual({ case: "text", value: "HI" });
    expect((await runAgentWithSidecar(configFor({ MENTATLAB_AGENT_ID: "org.example.shout" }), result({ shout: 42 }), inherit)).failure).toMatch(
      /output "shout" is text and must be a string/,
    );
    expect((await runAgentWithSidecar(configFor({ MENTATLAB_AGENT_ID: "org.example.shout" }), result({ whisper: "hi" }), inherit)).failure).toMatch(
      /"whisper" is not an output pin \(outputs: shout\)/,
    );
  });

  it("holds outputs to their pin's declared media constraints: storage refuses a breach before storing it and the node fails with its message", async () => {
    await plane.registerManifest(
      [
        "id: org.example.still",
        "version: 1.0.0",
        "command: [still]",
        "outputs:",
        "  - name: still",
        "    type: image",
        "    media: { acceptedMimeTypes: [image/png], maxSizeBytes: 4000, maxWidth: 40 }",
      ].join("\n"),
    );
    /** A square image, plain or of random (incompressible) pixels. */
    const image = async (name: string, width: number, format: "png" | "jpeg", noise = false) => {
      const path = join(dir, name);
      const pixels = noise
        ? sharp(randomBytes(width * width * 3), { raw: { width, height: width, channels: 3 } })
        : sharp({ create: { width, height: width, channels: 3, background: "#2080c0" } });
      await (format === "png" ? pixels.png() : pixels.jpeg()).toFile(path);
      return path;
    };
    const conforming = await image("still-ok.png", 32, "png");
    const jpeg = await image("still.jpg", 32, "jpeg");
    const large = await image("still-large.png", 36, "png", true);
    const wide = await image("still-wide.png", 64, "png");
    expect((await stat(conforming)).size).toBeLessThan(4000);
    expect((await stat(large)).size).toBeGreaterThan(4000);
    expect((await stat(wide)).size).toBeLessThan(4000);
    // A plain agent copying the file named by its params into its work dir and returning it as `still`.
    const copyAgent = [
      process.execPath,
      "-e",
      `let raw = ""; process.stdin.on("data", (d) => (raw += d)).on("end", () => {
        const { spec, context } = JSON.parse(raw);
        const out = require("node:path").join(context.work_dir, "still");
        require("node:fs").copyFileSync(spec.params.source, out);
        console.log(JSON.stringify({ result: { still: { path: out } } }));
      });`,
    ];
    const run = (source: string, env: Record<string, string> = {}) =>
      runAgentWithSidecar(
        configFor({ MENTATLAB_AGENT_ID: "org.example.still", MENTATLAB_PARAMS_JSON: JSON.stringify({ source }), ...env }),
        copyAgent,
        inherit,
      );
    const usageBefore = await clients.storage.getUsage({});

    const wrongType = await run(jpeg);
    expect(wrongType.exitCode).toBe(1);
    expect(wrongType.failure).toBe(
      'sidecar failed: [invalid_argument] output pin "still" refused by storage: content type image/jpeg is not accepted by the pin, which takes image/png',
    );
    // The executor's pin types (as a Kubernetes Job gets them) do not hide the manifest's constraints.
    const tooLarge = await run(large, { MENTATLAB_OUTPUT_PINS_JSON: '{"still": "image"}' });
    expect(tooLarge.failure).toMatch(
      /^sidecar failed: \[invalid_argument\] output pin "still" refused by storage: declared size \d+ bytes is over the pin's 4000-byte limit$/,
    );
    const tooWide = await run(wide);
    expect(tooWide.failure).toMatch(/^sidecar failed: \[invalid_argument\] output pin "still" refused by storage: .*width 64.*40/);
    expect(await clients.storage.getUsage({})).toEqual(usageBefore);

    const passed = await run(conforming);
    expect(passed.failure).toBeUndefined();
    const still = passed.outputs.still?.value;
    expect(still?.case === "media" && still.value).toMatchObject({ mimeType: "image/png", sizeBytes: BigInt((await stat(conforming)).size) });
  });

  it("fails a crashed agent with its exit code and last stderr lines, keeping exit 3 transient", async () => {
    const config = configFor({ MENTATLAB_STDERR_TAIL_LINES: "2" });
    const reportedBefore = plane.reported.length;
    const outcome = await runAgentWithSidecar(
      config,
      [process.execPath, "-e", 'console.error("loading"); console.error("model server refused"); console.error("giving up"); process.exit(3)'],
      inherit,
    );
    expect(outcome.exitCode).toBe(3);
    expect(outcome.failure).toBe("agent exited with code 3; last stderr lines:\nmodel server refused\ngiving up");
    const logged = plane.reported.slice(reportedBefore).find((event) => event.event.case === "log" && event.event.value.level === LogLevel.ERROR);
    expect(logged?.event.case === "log" && logged.event.value.message).toBe(outcome.failure);
  });

  it("refuses a download whose bytes do not match the ref's sha256, keeping nothing", async () => {
    const input = await uploadPng(12, 12);
    const tampered = { ...input, sha256: "0".repeat(64) };
    const config = configFor({
      MENTATLAB_INPUTS_JSON: JSON.stringify({
        image: toJson(PinValueSchema, { $typeName: "mentatlab.v1.PinValue", value: { case: "media", value: tampered } }),
      }),
    });
    const outcome = await runAgentWithSidecar(config, [process.execPath, "-e", "process.exit(0)"], inherit);
    expect(outcome.exitCode).toBe(1);
    expect(outcome.failure).toMatch(/sidecar could not prepare the node: .*sha256 of downloaded .* is [0-9a-f]{64}, its ref says 0{64}/);
    await expect(readFile(join(config.sharedDir, "inputs", "image.png"))).rejects.toThrow();
  });

  it("refuses an input pin name that would escape the inputs directory", async () => {
    const config = configFor({ MENTATLAB_INPUTS_JSON: '{"../../escape": {"text": "x"}}' });
    const outcome = await runAgentWithSidecar(config, [process.execPath, "-e", "process.exit(0)"], inherit);
    expect(outcome.exitCode).toBe(1);
    expect(outcome.failure).toContain('input pin name "../../escape" is not a pin name');
  });

  it("streams an SDK agent's output live: the TTS agent's WAV arrives in 8 KiB chunks, ending with stream_end", async () => {
    const config = configFor({
      MENTATLAB_INPUTS_JSON: JSON.stringify({ text: { text: "Streaming speech through the sidecar." } }),
      MENTATLAB_OUTPUT_PINS_JSON: '{"audio": "stream", "speech": "audio"}',
    });
    const outcome = await runAgentWithSidecar(config, [tsx, join(repo, "examples/agents/tts/agent.ts")], inherit);
    expect(outcome.failure).toBeUndefined();
    const audio = outcome.outputs.audio?.value;
    const speech = outcome.outputs.speech?.value;
    if (audio?.case !== "stream" || speech?.case !== "media") throw new Error("expected a stream and a stored WAV");
    const chunks: Uint8Array[] = [];
    let ended = false;
    for await (const event of clients.stream.subscribe({ streamId: audio.value.streamId })) {
      if (event.event.case === "data") chunks.push(event.event.value.data);
      if (event.event.case === "end") ended = true;
    }
    expect(ended).toBe(true);
    expect(chunks.length).toBeGreaterThan(2);
    expect(chunks.slice(0, -1).every((chunk) => chunk.length === 8192)).toBe(true);
    const streamed = Buffer.concat(chunks);
    expect(streamed.toString("ascii", 0, 4)).toBe("RIFF");
    // The stored file is the streamed bytes with the WAV sizes filled in.
    expect(BigInt(streamed.length)).toBe(speech.value.sizeBytes);
  });

  it("stops the agent when the orchestrator says the run was cancelled", async () => {
    const agentFile = join(dir, "loop-agent.mts");
    await writeFile(
      agentFile,
      `import { Agent } from ${JSON.stringify(join(repo, "sdk/index.ts"))};
       const agent = Agent.connect();
       for (;;) { await agent.heartbeat(); await new Promise((resolve) => setTimeout(resolve, 50)); }`,
    );
    const config = configFor({}, "run-cancelled");
    setTimeout(() => plane.cancel("run-cancelled"), 300);
    const started = Date.now();
    const outcome = await runAgentWithSidecar(config, [tsx, agentFile], inherit);
    expect(outcome.exitCode).toBe(1);
    expect(outcome.failure).toBe("the agent was stopped: the run was cancelled or timed out");
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it("serves the SidecarService only to callers with the pod token", async () => {
    const config = configFor({ MENTATLAB_INPUTS_JSON: '{"note": {"text": "hi"}}' });
    const sidecar = await startSidecar(config);
    try {
      const client = (token: string) => createClient(SidecarService, createSidecarTransport({ address: sidecar.address, token }));
      const inputs = await client(sidecar.token).getInputs({});
      expect(inputs.inputs.note?.value).toEqual({ case: "text", value: "hi" });
      await expect(client("not-the-token").getInputs({})).rejects.toMatchObject({ code: Code.Unauthenticated });
      await expect(client(config.runToken).getInputs({})).rejects.toMatchObject({ code: Code.Unauthenticated });
    } finally {
      await sidecar.close();
    }
  });
});
