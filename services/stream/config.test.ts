import { describe, expect, it } from "vitest";
import { streamConfigFromEnv } from "./config.js";

describe("streamConfigFromEnv", () => {
  it("needs nothing for the embedded default: in memory, the design's limits", () => {
    expect(streamConfigFromEnv({})).toEqual({
      redisUrl: undefined,
      redisKeyPrefix: "ml:stream:",
      redisTimeoutMs: 2_000,
      maxOpenStreamsPerUser: 10,
      maxDurationMs: 3_600_000,
      retainedMs: 300_000,
      retainedMaxEvents: 10_000,
      retainedMaxBytes: 64 * 1024 * 1024,
      subscriberMaxLagBytes: 8 * 1024 * 1024,
      backpressureWindowBytes: 4 * 1024 * 1024,
      backpressureDetachGraceMs: 10_000,
      endedTtlMs: 300_000,
      bitrateWindowMs: 5_000,
      sweepIntervalMs: 1_000,
      sseKeepaliveMs: 15_000,
    });
  });

  it("reads every setting from its variable", () => {
    const config = streamConfigFromEnv({
      REDIS_URL: "redis://127.0.0.1:6380",
      STREAM_REDIS_PREFIX: "mesh2:",
      REDIS_TIMEOUT_MS: "750",
      STREAM_MAX_OPEN_PER_USER: "3",
      STREAM_MAX_DURATION_SECONDS: "60",
      STREAM_RETAINED_SECONDS: "30",
      STREAM_RETAINED_MAX_EVENTS: "500",
      STREAM_RETAINED_MAX_BYTES: "1048576",
      STREAM_SUBSCRIBER_MAX_LAG_BYTES: "262144",
      STREAM_BACKPRESSURE_WINDOW_BYTES: "65536",
      STREAM_BACKPRESSURE_DETACH_GRACE_SECONDS: "2",
      STREAM_ENDED_TTL_SECONDS: "10",
      STREAM_BITRATE_WINDOW_MS: "2000",
      STREAM_SWEEP_INTERVAL_MS: "250",
      STREAM_SSE_KEEPALIVE_SECONDS: "5",
    });
    expect(config).toEqual({
      redisUrl: "redis://127.0.0.1:6380",
      redisKeyPrefix: "mesh2:",
      redisTimeoutMs: 750,
      maxOpenStreamsPerUser: 3,
      maxDurationMs: 60_000,
      retainedMs: 30_000,
      retainedMaxEvents: 500,
      retainedMaxBytes: 1_048_576,
      subscriberMaxLagBytes: 262_144,
      backpressureWindowBytes: 65_536,
      backpressureDetachGraceMs: 2_000,
      endedTtlMs: 10_000,
      bitrateWindowMs: 2_000,
      sweepIntervalMs: 250,
      sseKeepaliveMs: 5_000,
    });
  });

  it("names the variable that holds a bad value", () => {
    expect(() => streamConfigFromEnv({ STREAM_MAX_OPEN_PER_USER: "ten" })).toThrow(/STREAM_MAX_OPEN_PER_USER.*"ten"/);
    expect(() => streamConfigFromEnv({ STREAM_RETAINED_SECONDS: "-5" })).toThrow(/STREAM_RETAINED_SECONDS/);
    expect(() => streamConfigFromEnv({ REDIS_TIMEOUT_MS: "2s" })).toThrow(/REDIS_TIMEOUT_MS.*"2s"/);
    // Counts are whole: half a stream would silently have allowed none.
    expect(() => streamConfigFromEnv({ STREAM_MAX_OPEN_PER_USER: "0.5" })).toThrow(/STREAM_MAX_OPEN_PER_USER must be an integer/);
    expect(() => streamConfigFromEnv({ STREAM_RETAINED_MAX_EVENTS: "0" })).toThrow(/STREAM_RETAINED_MAX_EVENTS/);
  });
});
