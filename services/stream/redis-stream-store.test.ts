import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PinType } from "../../gen/mentatlab/v1/common_pb.js";
import { StreamInfoSchema } from "../../gen/mentatlab/v1/stream_pb.js";
import { type RedisServer, startRedis } from "../../test/harness/index.js";
import { RedisStreamStore } from "./redis-stream-store.js";
import { defaultTestRetention, describeStreamStoreConformance } from "./stream-store.conformance.js";
import { newStreamId } from "./stream-id.js";

let redis: RedisServer;
let registries = 0;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

// A prefix per store keeps tests apart while they share one server.
describeStreamStoreConformance("redis", (retention) =>
  RedisStreamStore.connect(redis.url, { ...retention, keyPrefix: `t${++registries}:`, maxDurationMs: 3_600_000 }, 2_000),
);

describe("RedisStreamStore when Redis is down", () => {
  it("answers UNAVAILABLE, which clients retry, rather than an internal error", async () => {
    const own = await startRedis();
    // No retries, so the failure shows at once instead of after ioredis's reconnect budget.
    const client = new Redis(own.url, { maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on("error", () => undefined);
    const store = new RedisStreamStore(client, { ...defaultTestRetention, keyPrefix: "down:", maxDurationMs: 3_600_000 });
    try {
      const id = newStreamId(Date.now());
      const info = create(StreamInfoSchema, { ref: { streamId: id, workspace: "ws", payloadType: PinType.TEXT }, owner: "a" });
      await store.create(info, Date.now() + 60_000, 10, Date.now());
      await own.kill();
      const error = await store.append({ workspace: "ws", id }, [{ data: new Uint8Array([1]), clientSeq: 0n, attributes: {} }], Date.now()).then(
        () => undefined,
        (err: unknown) => ConnectError.from(err),
      );
      expect(error?.code).toBe(Code.Unavailable);
      expect(error?.rawMessage).toContain("stream store is unavailable");
      expect(await store.get({ workspace: "ws", id }).catch((err: unknown) => ConnectError.from(err).code)).toBe(Code.Unavailable);
    } finally {
      await store.close();
      await own.stop();
    }
  });
});
