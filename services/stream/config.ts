import { redisTimeoutMsFromEnv } from "../shared/redis.js";
import { integerVar, numberVar, type Env } from "../shared/env.js";

/** Settings of the stream service, read once from the environment. */
export interface StreamConfig {
  /** Redis URL for the shared Redis Streams store; unset keeps everything in this process's memory. */
  readonly redisUrl: string | undefined;
  /** Prefix of every Redis key the store writes, so several meshes can share one Redis. */
  readonly redisKeyPrefix: string;
  /** Longest any call waits on Redis before it answers UNAVAILABLE. */
  readonly redisTimeoutMs: number;
  /** Streams one user may have open at once in a workspace. */
  readonly maxOpenStreamsPerUser: number;
  /** Longest a stream may stay open before it is ended with stream_error. */
  readonly maxDurationMs: number;
  /** How far back resuming subscribers can go, in time. */
  readonly retainedMs: number;
  /** How far back resuming subscribers can go, in events (Redis trims approximately, in blocks of ~100). */
  readonly retainedMaxEvents: number;
  /** Bytes of retained payload held in memory per stream (memory store and per-process caches). */
  readonly retainedMaxBytes: number;
  /** Payload bytes a live subscriber may fall behind the newest event before it gets OUT_OF_RANGE. */
  readonly subscriberMaxLagBytes: number;
  /** Payload bytes a downstream agent of a `block` or `fail` stream edge may fall behind, unless its edge says. */
  readonly backpressureWindowBytes: number;
  /** How long such an agent keeps holding its producer after its last subscription ended, while it reconnects. */
  readonly backpressureDetachGraceMs: number;
  /** How long an ended stream's buffer stays readable. */
  readonly endedTtlMs: number;
  /** Window over which produced and delivered rates are compared for bitrate advice. */
  readonly bitrateWindowMs: number;
  /** How often overdue streams are ended and old events trimmed. */
  readonly sweepIntervalMs: number;
  /** Interval of comment lines that keep idle Server-Sent Events connections open through proxies. */
  readonly sseKeepaliveMs: number;
}

export function streamConfigFromEnv(env: Env): StreamConfig {
  const redisUrl = env.REDIS_URL?.trim();
  return {
    redisUrl: redisUrl ? redisUrl : undefined,
    redisKeyPrefix: env.STREAM_REDIS_PREFIX ?? "ml:stream:",
    redisTimeoutMs: redisTimeoutMsFromEnv(env),
    maxOpenStreamsPerUser: integerVar(env, "STREAM_MAX_OPEN_PER_USER", 10, { min: 1 }),
    maxDurationMs: numberVar(env, "STREAM_MAX_DURATION_SECONDS", 3600, { exclusiveMin: 0 }) * 1000,
    retainedMs: numberVar(env, "STREAM_RETAINED_SECONDS", 300, { exclusiveMin: 0 }) * 1000,
    retainedMaxEvents: integerVar(env, "STREAM_RETAINED_MAX_EVENTS", 10_000, { min: 1 }),
    retainedMaxBytes: integerVar(env, "STREAM_RETAINED_MAX_BYTES", 64 * 1024 * 1024, { min: 1 }),
    subscriberMaxLagBytes: integerVar(env, "STREAM_SUBSCRIBER_MAX_LAG_BYTES", 8 * 1024 * 1024, { min: 1 }),
    backpressureWindowBytes: integerVar(env, "STREAM_BACKPRESSURE_WINDOW_BYTES", 4 * 1024 * 1024, { min: 1 }),
    backpressureDetachGraceMs: numberVar(env, "STREAM_BACKPRESSURE_DETACH_GRACE_SECONDS", 10, { min: 0 }) * 1000,
    endedTtlMs: numberVar(env, "STREAM_ENDED_TTL_SECONDS", 300, { exclusiveMin: 0 }) * 1000,
    bitrateWindowMs: numberVar(env, "STREAM_BITRATE_WINDOW_MS", 5_000, { exclusiveMin: 0 }),
    sweepIntervalMs: numberVar(env, "STREAM_SWEEP_INTERVAL_MS", 1_000, { exclusiveMin: 0 }),
    sseKeepaliveMs: numberVar(env, "STREAM_SSE_KEEPALIVE_SECONDS", 15, { exclusiveMin: 0 }) * 1000,
  };
}
