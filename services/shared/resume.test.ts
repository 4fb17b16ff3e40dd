import { Code, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PinType } from "../../gen/mentatlab/v1/common_pb.js";
import { StreamAnnouncementKind, StreamService } from "../../gen/mentatlab/v1/stream_pb.js";
import { freePort, makeTempDir, startRedis, type RedisServer } from "../../test/harness/index.js";
import { startEmbedded, type EmbeddedMesh } from "../mesh/embedded.js";
import { followDeduplicated, followSequenced, type ResumePolicy } from "./resume.js";
import { announcementKey, subscribeCall, watchStreamsCall } from "./watched-calls.js";

const apiKey = "mlk_resume_0123456789abcdef";
const quick: ResumePolicy = { initialDelayMs: 50, maxDelayMs: 400, giveUpAfterMs: 20_000 };

/**
 * The shared resume helper against a real mesh that is stopped and started again on the same port,
 * with its streams in a real Redis so they outlive the process.
 */
describe("following calls across a server restart", () => {
  let redis: RedisServer;
  let port: number;
  let dataDir: string;
  let mesh: EmbeddedMesh | undefined;
  let streams: Client<typeof StreamService>;

  const start = async () => {
    mesh = await startEmbedded({
      port,
      dataDir,
      env: { PATH: process.env.PATH, REDIS_URL: redis.url, MENTATLAB_API_KEYS: `${apiKey}=rhea@ws-resume:admin`, MENTATLAB_SHUTDOWN_GRACE_MS: "100" },
    });
  };
  const stop = async () => {
    await mesh?.close();
    mesh = undefined;
  };

  beforeAll(async () => {
    redis = await startRedis();
    port = await freePort();
    dataDir = makeTempDir("resume");
    await start();
    const bearer: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Bearer ${apiKey}`);
      return next(req);
    };
    streams = createClient(StreamService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}`, interceptors: [bearer] }));
  }, 30_000);
  afterAll(async () => {
    await stop();
    await redis?.stop();
  });

  const publish = (streamId: string, from: number, to: number) =>
    streams.publishBatch({
      streamId,
      payloads: Array.from({ length: to - from + 1 }, (_, i) => ({ data: new TextEncoder().encode(`${from + i},`), clientSeq: BigInt(from + i) })),
    });

  it("Subscribe: every event once and in order although the server went away twice mid-stream", async () => {
    const { stream } = await streams.initStream({ payloadType: PinType.TEXT, mimeType: "text/plain" });
    const streamId = stream?.ref?.streamId ?? "";
    await publish(streamId, 1, 10);
    const retries: string[] = [];
    const seqs: bigint[] = [];
    let text = "";
    const events = followSequenced(subscribeCall(streams, streamId), 0n, { ...quick, onRetry: (error) => retries.push(String(error)) });
    for await (const event of events) {
      seqs.push(event.seq);
      if (event.event.case === "data") text += new TextDecoder().decode(event.event.value.data);
      // After the 10th payload (event 11, stream_start being 1), and again after the 20th.
      if (event.seq === 11n || event.seq === 21n) {
        await stop();
        await start();
        await publish(streamId, Number(event.seq), Number(event.seq) + 9);
        if (event.seq === 21n) await streams.closeStream({ streamId });
      }
    }
    expect(retries.length).toBeGreaterThanOrEqual(2);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => BigInt(i + 1)));
    expect(text).toBe(Array.from({ length: 30 }, (_, i) => `${i + 1},`).join(""));
  }, 60_000);

  it("WatchStreams: an announcement the reopened call repeats is not shown twice", async () => {
    const { stream: first } = await streams.initStream({ payloadType: PinType.TEXT, mimeType: "text/plain" });
    const firstId = first?.ref?.streamId ?? "";
    let secondId = "";
    let retries = 0;
    const seen: string[] = [];
    const controller = new AbortController();
    const announcements = followDeduplicated(watchStreamsCall(streams), announcementKey, { ...quick, onRetry: () => retries++ }, controller.signal);
    for await (const announcement of announcements) {
      seen.push(announcementKey(announcement));
      const id = announcement.stream?.ref?.streamId;
      if (id === firstId && secondId === "") {
        await stop();
        await start();
        const { stream: second } = await streams.initStream({ payloadType: PinType.TEXT, mimeType: "text/plain" });
        secondId = second?.ref?.streamId ?? "";
      }
      // The reopened call lists open streams newest first: the second one's end comes after the whole list.
      if (secondId !== "" && id === secondId && announcement.kind === StreamAnnouncementKind.AVAILABLE) await streams.closeStream({ streamId: secondId });
      if (secondId !== "" && id === secondId && announcement.kind === StreamAnnouncementKind.ENDED) break;
    }
    controller.abort();
    expect(retries).toBeGreaterThanOrEqual(1);
    const available = (id: string) => seen.filter((key) => key === `${StreamAnnouncementKind.AVAILABLE}:${id}`).length;
    expect(available(firstId)).toBe(1);
    expect(available(secondId)).toBe(1);
  }, 60_000);

  it("WatchStreams: a stream that ended while the watcher was away is announced as ended when it is back", async () => {
    const { stream } = await streams.initStream({ payloadType: PinType.TEXT, mimeType: "text/plain" });
    const streamId = stream?.ref?.streamId ?? "";
    const controller = new AbortController();
    // The watcher comes back a second after losing the server: the stream ends in between.
    const slow: ResumePolicy = { initialDelayMs: 1_000, maxDelayMs: 1_000, giveUpAfterMs: 20_000 };
    const seen: string[] = [];
    for await (const announcement of followDeduplicated(watchStreamsCall(streams), announcementKey, slow, controller.signal)) {
      if (announcement.stream?.ref?.streamId !== streamId) continue;
      seen.push(StreamAnnouncementKind[announcement.kind]);
      if (announcement.kind === StreamAnnouncementKind.AVAILABLE) {
        await stop();
        await start();
        await streams.closeStream({ streamId });
      } else break;
    }
    controller.abort();
    expect(seen).toEqual(["AVAILABLE", "ENDED"]);
  }, 30_000);

  it("gives up with UNAVAILABLE once the server has been gone for the whole budget", async () => {
    const { stream } = await streams.initStream({ payloadType: PinType.TEXT, mimeType: "text/plain" });
    const streamId = stream?.ref?.streamId ?? "";
    await publish(streamId, 1, 1);
    const startedAt = Date.now();
    let stoppedAt = 0;
    const follow = async () => {
      for await (const event of followSequenced(subscribeCall(streams, streamId), 0n, { ...quick, giveUpAfterMs: 1_500 })) {
        if (event.seq === 2n) {
          await stop();
          stoppedAt = Date.now();
        }
      }
    };
    await expect(follow()).rejects.toMatchObject({ code: Code.Unavailable });
    const failedAfter = Date.now() - stoppedAt;
    expect(stoppedAt).toBeGreaterThan(startedAt);
    expect(failedAfter).toBeGreaterThanOrEqual(1_400);
    expect(failedAfter).toBeLessThan(5_000);
    await start();
  }, 30_000);
});
