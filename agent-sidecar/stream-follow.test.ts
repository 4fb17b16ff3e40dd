import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PinType } from "../gen/mentatlab/v1/common_pb.js";
import { createGatewayClients, createGatewayTransport, type GatewayClients } from "./gateway-clients.js";
import { followStream } from "./stream-follow.js";
import { startDataPlane, type DataPlane } from "./testing.js";

describe("followStream against the real StreamService", () => {
  let dir: string;
  let plane: DataPlane;
  let clients: GatewayClients;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "follow-"));
    plane = await startDataPlane(join(dir, "data"));
    clients = createGatewayClients(createGatewayTransport(plane.url, plane.runToken("run-f", "producer")));
  });
  afterAll(async () => {
    await plane?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const payloads = (from: number, to: number) =>
    Array.from({ length: to - from + 1 }, (_, i) => ({ data: Buffer.from(`line ${from + i}\n`), clientSeq: BigInt(from + i) }));

  it("resumes after the last sequence number when the gateway dies mid-stream: every event once, in order", async () => {
    const { stream } = await clients.stream.initStream({ payloadType: PinType.TEXT, mimeType: "text/plain", runId: "run-f" });
    const streamId = stream?.ref?.streamId ?? "";
    await clients.stream.publishBatch({ streamId, payloads: payloads(1, 40) });

    const seen: string[] = [];
    const seqs: bigint[] = [];
    let ended = false;
    for await (const event of followStream(clients.stream, streamId, 0n, { backoff: { initialMs: 20, maxMs: 200 }, giveUpMs: 20_000 })) {
      seqs.push(event.seq);
      if (event.event.case === "data") {
        seen.push(Buffer.from(event.event.value.data).toString("utf8"));
        if (seen.length === 10) {
          await plane.kill();
          await plane.restart();
          await clients.stream.publishBatch({ streamId, payloads: payloads(41, 60) });
          await clients.stream.closeStream({ streamId });
        }
      }
      if (event.event.case === "end") ended = true;
    }
    expect(ended).toBe(true);
    expect(seen).toEqual(payloads(1, 60).map((payload) => payload.data.toString("utf8")));
    expect(seqs).toEqual(seqs.map((_, i) => BigInt(i + 1)));
  });

  it("gives up at once on a stream the run cannot see", async () => {
    const stranger = createGatewayClients(createGatewayTransport(plane.url, plane.runToken("run-x", "n", "bob", "ws-other")));
    const { stream } = await clients.stream.initStream({ payloadType: PinType.TEXT, mimeType: "text/plain", runId: "run-f" });
    const follow = async () => {
      for await (const _ of followStream(stranger.stream, stream?.ref?.streamId ?? "", 0n, { backoff: { initialMs: 20, maxMs: 50 }, giveUpMs: 5_000 })) void _;
    };
    await expect(follow()).rejects.toMatchObject({ code: Code.NotFound });
  });
});
