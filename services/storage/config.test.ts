import { describe, expect, it } from "vitest";
import { ConfigError } from "../shared/env.js";
import { storageConfigFromEnv } from "./config.js";

const secret = { MENTATLAB_PRESIGN_SECRET: "0123456789abcdef" };

describe("storageConfigFromEnv", () => {
  it("defaults to files under the data dir, quotas in the embedded database and the documented limits", () => {
    const config = storageConfigFromEnv({ ...secret, PORT: "7000" }, "/data");
    expect(config.backend).toEqual({ kind: "file", root: "/data/storage" });
    expect(config.redisUrl).toBeUndefined();
    expect(config.databaseFile).toBe("/data/mentatlab.db");
    expect(storageConfigFromEnv({ ...secret, MENTATLAB_DATABASE: "memory" }, "/data").databaseFile).toBeUndefined();
    expect(storageConfigFromEnv({ ...secret, MENTATLAB_DATABASE: "/var/lib/ml.db" }, "/data").databaseFile).toBe("/var/lib/ml.db");
    expect(config.clamd).toBeUndefined();
    expect(config.publicUrl).toBe("http://127.0.0.1:7000");
    expect([config.userQuotaBytes, config.workspaceQuotaBytes]).toEqual([10e9, 100e9]);
    expect([config.mediaTtlSeconds, config.mediaArchiveAfterSeconds, config.tempTtlSeconds]).toEqual([604_800, 86_400, 3_600]);
    expect(config.ceilings).toEqual({ maxDimensionPx: 65_535, maxPixels: 268_402_689, maxDurationSeconds: 86_400 });
  });

  it("reads the media ceilings from their variables", () => {
    const env = { ...secret, STORAGE_MAX_DIMENSION_PX: "4096", STORAGE_MAX_PIXELS: "0", STORAGE_MAX_DURATION_SECONDS: "60" };
    expect(storageConfigFromEnv(env, "/data").ceilings).toEqual({ maxDimensionPx: 4096, maxPixels: 0, maxDurationSeconds: 60 });
    expect(() => storageConfigFromEnv({ ...secret, STORAGE_MAX_DIMENSION_PX: "-1" }, "/data")).toThrow("STORAGE_MAX_DIMENSION_PX");
  });

  it("picks S3 when an endpoint and bucket are set, and clamd by socket or host", () => {
    const config = storageConfigFromEnv(
      { ...secret, S3_ENDPOINT: "http://127.0.0.1:9000", S3_BUCKET: "media", CLAMD_HOST: "127.0.0.1", REDIS_URL: "redis://127.0.0.1:6379" },
      "/data",
    );
    expect(config.backend).toMatchObject({ kind: "s3", endpoint: "http://127.0.0.1:9000", bucket: "media", region: "us-east-1", requestTimeoutMs: 10_000 });
    expect(config.clamd).toEqual({ kind: "tcp", host: "127.0.0.1", port: 3310, timeoutMs: 30_000 });
    expect(config.redisUrl).toBe("redis://127.0.0.1:6379");
    expect(config.databaseFile).toBeUndefined();
  });

  it("refuses incomplete or malformed settings with the variable's name", () => {
    expect(() => storageConfigFromEnv({}, "/data")).toThrow("MENTATLAB_PRESIGN_SECRET");
    expect(() => storageConfigFromEnv({ ...secret, S3_BUCKET: "b" }, "/data")).toThrow("S3_ENDPOINT");
    expect(() => storageConfigFromEnv({ ...secret, STORAGE_MAX_IMAGE_BYTES: "lots" }, "/data")).toThrow("STORAGE_MAX_IMAGE_BYTES");
  });

  it("reports the presign secret and the S3 pair as ConfigErrors, one line for the CLI, never quoting the secret", () => {
    const thrown = (env: Record<string, string>) => {
      try {
        storageConfigFromEnv(env, "/data");
      } catch (error) {
        return error;
      }
      throw new Error("no error");
    };
    expect(thrown({})).toEqual(new ConfigError("MENTATLAB_PRESIGN_SECRET", "at least 16 characters", "", "it is not set"));
    const short = thrown({ MENTATLAB_PRESIGN_SECRET: "hunter2" });
    expect(short).toBeInstanceOf(ConfigError);
    expect((short as Error).message).toBe("MENTATLAB_PRESIGN_SECRET must be at least 16 characters: it has 7");
    expect((thrown({ ...secret, S3_ENDPOINT: "http://127.0.0.1:9000" }) as Error).message).toBe(
      "S3_BUCKET must be set together with S3_ENDPOINT: only S3_ENDPOINT is set",
    );
    expect(thrown({ ...secret, S3_BUCKET: "media" })).toBeInstanceOf(ConfigError);
  });

  it("takes the presign secret and the public URL a composition root settled over the variables", () => {
    const config = storageConfigFromEnv({ MENTATLAB_PUBLIC_URL: "http://ignored" }, "/data", {
      presignSecret: "generated-secret-0123",
      publicUrl: "http://127.0.0.1:41234/",
    });
    expect(config.presignSecret).toBe("generated-secret-0123");
    expect(config.publicUrl).toBe("http://127.0.0.1:41234");
    expect(storageConfigFromEnv({ ...secret, PORT: "7000" }, "/data").publicUrl).toBe("http://127.0.0.1:7000");
  });
});
