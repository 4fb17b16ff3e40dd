import { create, toJson, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import { beforeAll, describe, expect, it } from "vitest";
import {
  UploadRequestSchema,
  DownloadResponseSchema,
  StatResponseSchema,
  GetUsageResponseSchema,
  UploadResponseSchema,
} from "../../gen/mentatlab/v1/storage_pb.js";
import { InitStreamResponseSchema, PublishBatchResponseSchema, StreamEventSchema } from "../../gen/mentatlab/v1/stream_pb.js";
import { ValidateManifestResponseSchema, RegisterAgentResponseSchema, ListAgentsResponseSchema } from "../../gen/mentatlab/v1/registry_pb.js";
import { RunEventSchema, SubmitFlowResponseSchema } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { PinType } from "../../gen/mentatlab/v1/common_pb.js";
import { makeTempDir, removeTempDir } from "../harness/index.js";
import { meshClients, type MeshUnderTest } from "../e2e/support/clients.js";
import { startDistributedMesh } from "../e2e/support/distributed-mesh.js";
import { startEmbedded } from "../../services/mesh/embedded.js";

const repo = fileURLToPath(new URL("../../", import.meta.url));

// Values that differ between any two runs by nature: ids, clocks, the caller's workspace and the URLs.
const volatile = new Set([
  "id",
  "refId",
  "runId",
  "streamId",
  "workspace",
  "owner",
  "createdAt",
  "expiresAt",
  "endedAt",
  "startedAt",
  "registeredAt",
  "time",
  "url",
  "ssePath",
  "workingDir",
  "correlationId",
  "lastEventSeq",
]);

function normalise(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalise);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([key]) => !volatile.has(key))
        .map(([key, inner]) => [key, normalise(inner)]),
    );
  }
  return value;
}

function json<D extends DescMessage>(schema: D, message: MessageShape<D>): unknown {
  return normalise(toJson(schema, message));
}

async function errorOf(call: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await call;
    return { code: "ok", message: "" };
  } catch (error) {
    const e = ConnectError.from(error);
    return { code: String(e.code), message: e.rawMessage };
  }
}

/** One user session touching every service; returns what that user saw, minus what varies by nature. */
async function session(mesh: MeshUnderTest): Promise<unknown[]> {
  const { storage, streams, registry, orchestrator } = meshClients(mesh);
  const seen: unknown[] = [];
  const png = await sharp({ create: { width: 64, height: 48, channels: 3, background: "#3366cc" } })
    .png()
    .toBuffer();

  seen.push(json(GetUsageResponseSchema, await storage.getUsage({})));
  async function* upload() {
    yield create(UploadRequestSchema, { part: { case: "header", value: { filename: "blue.png", mimeType: "image/png", sizeBytes: BigInt(png.length) } } });
    yield create(UploadRequestSchema, { part: { case: "chunk", value: png } });
  }
  const uploaded = await storage.upload(upload());
  seen.push(json(UploadResponseSchema, uploaded));
  const refId = uploaded.ref?.id ?? "";
  seen.push(json(StatResponseSchema, await storage.stat({ refId })));
  const parts: unknown[] = [];
  for await (const part of storage.download({ refId, chunkBytes: 1024 })) parts.push(json(DownloadResponseSchema, part));
  seen.push(parts);
  seen.push(json(GetUsageResponseSchema, await storage.getUsage({})));
  seen.push(await errorOf(storage.stat({ refId: "no-such-object" })));
  seen.push(
    await errorOf(
      storage.upload(
        (async function* () {
          yield create(UploadRequestSchema, { part: { case: "header", value: { filename: "x.png", mimeType: "image/jpeg" } } });
          yield create(UploadRequestSchema, { part: { case: "chunk", value: png } });
        })(),
      ),
    ),
  );

  const badManifest = "id: not reverse dns\nversion: one\ninputs:\n  - { name: picture, type: image }\n";
  seen.push(json(ValidateManifestResponseSchema, await registry.validateManifest({ source: { source: { case: "text", value: badManifest } } })));
  const manifest = await readFile(`${repo}examples/agents/noop/manifest.yaml`, "utf8");
  seen.push(json(RegisterAgentResponseSchema, await registry.registerAgent({ source: { source: { case: "text", value: manifest } } })));
  seen.push(json(ListAgentsResponseSchema, await registry.listAgents({ idPrefix: "org.mentatlab.examples.noop" })));

  const opened = await streams.initStream({ payloadType: PinType.TEXT, mimeType: "text/plain" });
  seen.push(json(InitStreamResponseSchema, opened));
  const streamId = opened.stream?.ref?.streamId ?? "";
  seen.push(
    json(
      PublishBatchResponseSchema,
      await streams.publishBatch({
        streamId,
        payloads: ["one", "two", "three"].map((text, i) => ({ data: new TextEncoder().encode(text), clientSeq: BigInt(i + 1) })),
      }),
    ),
  );
  await streams.closeStream({ streamId });
  const events: unknown[] = [];
  for await (const event of streams.subscribe({ streamId })) events.push(json(StreamEventSchema, event));
  seen.push(events);

  const flow = await readFile(`${repo}examples/agents/noop/flow.yaml`, "utf8");
  const submitted = await orchestrator.submitFlow({
    source: { source: { case: "text", value: flow } },
    inputs: { "first.text": { value: { case: "text", value: "hello" } } },
  });
  seen.push(json(SubmitFlowResponseSchema, submitted));
  const runEvents: unknown[] = [];
  for await (const event of orchestrator.watchRun({ runId: submitted.run?.runId ?? "" })) {
    // Agents' own log and progress lines interleave with timing; the state changes and outputs do not.
    if (event.event.case === "agent" && event.event.value.event.case !== "output") continue;
    runEvents.push(json(RunEventSchema, event));
  }
  seen.push(runEvents);
  return seen;
}

describe("the same client calls get the same answers", () => {
  let embeddedAnswers: unknown[];
  let distributedAnswers: unknown[];

  beforeAll(async () => {
    const apiKey = "mlk_same_answers_0123456789";
    const dataDir = makeTempDir("same-answers-");
    const embedded = await startEmbedded({
      port: 0,
      dataDir,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, MENTATLAB_API_KEYS: `${apiKey}=dave@ws-embedded:admin` },
    });
    try {
      embeddedAnswers = await session({ url: embedded.url, apiKey, close: () => embedded.close() });
    } finally {
      await embedded.close();
      removeTempDir(dataDir);
    }
    const distributed = await startDistributedMesh(apiKey);
    try {
      distributedAnswers = await session(distributed);
    } finally {
      await distributed.close();
    }
  }, 120_000);

  it("from the embedded process and from separate service processes behind a gateway", () => {
    expect(embeddedAnswers.length).toBeGreaterThan(10);
    expect(distributedAnswers).toEqual(embeddedAnswers);
  });
});
