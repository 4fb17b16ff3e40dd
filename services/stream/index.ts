/**
 * StreamService: live streams with resumable subscribers over a stream store (memory or Redis Streams),
 * the Server-Sent Events route, Subscribe on the encoded fast path, limits and the sweeper of ended
 * and over-long streams. `mesh-module.ts` mounts it for services/mesh; the gateway takes
 * `subscriberFellBehind` from here for its shared Subscribe.
 *
 * @example
 * ```ts
 * import { createStreams, streamConfigFromEnv } from "../stream/index.js";
 *
 * const streams = await createStreams(streamConfigFromEnv(env));
 * router.service(StreamService, streams.impl); // plus streams.routes and streams.encodedStreams
 * await streams.close();
 * ```
 */
import type { ServiceImpl } from "@connectrpc/connect";
import type { StreamService } from "../../gen/mentatlab/v1/stream_pb.js";
import type { EncodedServerStream } from "../server/fast-path/index.js";
import type { HttpRoute } from "../shared/http-route.js";
import type { StreamConfig } from "./config.js";
import { DeliveryMeter } from "./delivery-meter.js";
import { encodedSubscribe } from "./encoded-subscribe.js";
import { MemoryStreamStore } from "./memory-stream-store.js";
import { StreamMetrics } from "./metrics.js";
import { RedisStreamStore } from "./redis-stream-store.js";
import type { Retention, StreamStore } from "./stream-store.js";
import { createStreamService } from "./stream-service.js";
import { createSseRoute, ssePath } from "./sse-route.js";
import { startSweeper } from "./sweeper.js";

export { streamConfigFromEnv, type StreamConfig } from "./config.js";
export type { StreamStore } from "./stream-store.js";
export { subscriberFellBehind } from "./errors.js";

/** The stream service, ready to mount: RPC handlers, the Server-Sent Events route, and its metrics. */
export interface StreamRuntime {
  readonly impl: ServiceImpl<typeof StreamService>;
  readonly routes: HttpRoute[];
  /** Subscribe on the server's encoded fast path (`ServerOptions.encodedStreams`); `impl` serves it too. */
  readonly encodedStreams: EncodedServerStream[];
  readonly metrics: StreamMetrics;
  /** Stops the sweeper and releases the store (Redis connections); open calls end with an error. */
  close(): Promise<void>;
}

function retentionOf(config: StreamConfig): Retention {
  return {
    retainedMs: config.retainedMs,
    retainedMaxEvents: config.retainedMaxEvents,
    retainedMaxBytes: config.retainedMaxBytes,
    endedTtlMs: config.endedTtlMs,
    subscriberMaxLagBytes: config.subscriberMaxLagBytes,
  };
}

/** Redis Streams when REDIS_URL is set (replicas share streams), this process's memory otherwise. */
export async function createStreamStore(config: StreamConfig): Promise<StreamStore> {
  if (config.redisUrl) {
    return RedisStreamStore.connect(
      config.redisUrl,
      { ...retentionOf(config), keyPrefix: config.redisKeyPrefix, maxDurationMs: config.maxDurationMs },
      config.redisTimeoutMs,
    );
  }
  return new MemoryStreamStore(retentionOf(config));
}

export async function createStreams(config: StreamConfig): Promise<StreamRuntime> {
  const store = await createStreamStore(config);
  const metrics = new StreamMetrics();
  const sweeper = startSweeper(store, metrics, config.sweepIntervalMs);
  // Shared by both Subscribe paths and Publish: advice compares what subscribers receive with what is produced.
  const deliveries = new DeliveryMeter(config.bitrateWindowMs);
  return {
    impl: createStreamService({ store, limits: config, metrics, deliveries, ssePath }),
    routes: [createSseRoute(store, metrics, config.sseKeepaliveMs)],
    encodedStreams: [encodedSubscribe(store, metrics, deliveries)],
    metrics,
    async close() {
      await sweeper.stop();
      await store.close();
    },
  };
}
