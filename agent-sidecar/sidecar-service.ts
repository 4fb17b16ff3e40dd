import { randomUUID } from "node:crypto";
import { mkdir, open, rm } from "node:fs/promises";
import { join } from "node:path";
import { create, type JsonObject } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { PinValue } from "../gen/mentatlab/v1/common_pb.js";
import { GetInputsResponseSchema, type LocalInput, type SidecarService, type WriteOutputRequest } from "../gen/mentatlab/v1/sidecar_pb.js";
import type { NodeEventReporter, NodeIdentity } from "./event-reporter.js";
import type { OutputPublisher } from "./output-publisher.js";
import type { OutputStreams } from "./output-streams.js";

export interface SidecarServiceDeps {
  readonly node: NodeIdentity;
  readonly inputs: ReadonlyMap<string, LocalInput>;
  readonly params: JsonObject;
  /** Where the agent may write outputs. */
  readonly workDir: string;
  readonly outputs: OutputPublisher;
  readonly streams: OutputStreams;
  readonly reporter: NodeEventReporter;
}

/** The SidecarService calls that serve one attempt. */
export type AttemptSidecarService = Omit<ServiceImpl<typeof SidecarService>, "nextAttempt" | "finishAttempt">;

/**
 * The pod-local API an agent calls for one attempt; everything it does goes through here to the mesh.
 * NextAttempt and FinishAttempt are the serving sidecar's: one attempt, or a warm worker's many.
 */
export function createSidecarService(deps: SidecarServiceDeps): AttemptSidecarService {
  const { node, outputs, streams, reporter } = deps;
  return {
    getInputs() {
      return create(GetInputsResponseSchema, {
        runId: node.runId,
        nodeId: node.nodeId,
        inputs: Object.fromEntries(deps.inputs),
        params: deps.params,
        workDir: deps.workDir,
      });
    },

    async putOutput(req) {
      let value: PinValue;
      switch (req.value.case) {
        case "text":
          value = await outputs.putText(req.pin, req.value.value);
          break;
        case "json":
          value = await outputs.putJson(req.pin, req.value.value);
          break;
        case "inlineBytes":
          value = await outputs.putBytes(req.pin, req.value.value, req.mimeType);
          break;
        case "filePath":
          value = await outputs.putFile(req.pin, req.value.value, req.mimeType);
          break;
        default:
          throw new ConnectError("set one of text, json, inline_bytes or file_path", Code.InvalidArgument);
      }
      return { value };
    },

    async writeOutput(requests) {
      const iterator = requests[Symbol.asyncIterator]();
      const first = await iterator.next();
      if (first.done || first.value.part.case !== "header") {
        throw new ConnectError("send a WriteOutputHeader as the first message, then chunks", Code.InvalidArgument);
      }
      const header = first.value.part.value;
      await mkdir(deps.workDir, { recursive: true });
      // Named by a fresh id, never by the caller's pin name, so it cannot point outside the work dir.
      const spool = join(deps.workDir, `.spool-${randomUUID()}`);
      try {
        await spoolChunks({ [Symbol.asyncIterator]: () => iterator }, spool);
        const value = await outputs.putFile(header.pin, spool, header.mimeType, header.pin);
        return { value };
      } finally {
        await rm(spool, { force: true });
      }
    },

    async openOutputStream(req) {
      const opened = await streams.open(req.pin, req.mimeType, req.payloadType);
      return { stream: opened.ref, recommendedChunkBytes: opened.recommendedChunkBytes };
    },

    async writeOutputStream(requests) {
      let streamId = "";
      let chunksWritten = 0n;
      for await (const req of requests) {
        streamId = req.streamId || streamId;
        if (!streamId) throw new ConnectError("set stream_id on the first WriteOutputStream message", Code.InvalidArgument);
        await streams.write(streamId, req.data);
        chunksWritten++;
      }
      return { chunksWritten };
    },

    async *watchOutputStream(req, ctx) {
      for await (const advice of streams.watch(req.streamId, ctx.signal)) {
        yield { advice: { case: "adaptBitrate", value: advice } };
      }
    },

    async closeOutputStream(req) {
      return { chunksRelayed: await streams.close(req.streamId, req.errorMessage) };
    },

    async report(req) {
      const event = req.event;
      if (!event) throw new ConnectError("set event", Code.InvalidArgument);
      event.time ??= timestampNow();
      return { cancelled: await reporter.report(event) };
    },
  };
}

/** Writes the chunks of a WriteOutput call to disk as they arrive, so large outputs never sit in memory. */
async function spoolChunks(chunks: AsyncIterable<WriteOutputRequest>, path: string): Promise<void> {
  const file = await open(path, "w");
  try {
    for await (const message of chunks) {
      if (message.part.case !== "chunk") {
        throw new ConnectError("send the header only once, as the first message", Code.InvalidArgument);
      }
      await file.write(message.part.value);
    }
  } finally {
    await file.close();
  }
}
