import { join } from "node:path";
import { databaseFileFromEnv } from "../shared/sqlite.js";
import { redisTimeoutMsFromEnv } from "../shared/redis.js";
import { ConfigError, integerVar, numberVar, portVar, type Env } from "../shared/env.js";

/** Which object store holds the bytes. */
export type BackendConfig =
  | { readonly kind: "file"; readonly root: string }
  | {
      readonly kind: "s3";
      readonly endpoint: string;
      readonly region: string;
      readonly bucket: string;
      readonly accessKeyId: string | undefined;
      readonly secretAccessKey: string | undefined;
      /** Storage class media objects move to after `archiveAfterSeconds`; empty skips the transition. */
      readonly archiveStorageClass: string;
      /** Longest wait for the answer to one S3 request (a part upload included). */
      readonly requestTimeoutMs: number;
    };

/** Where a malware scanner listens; absent when scanning is off. */
export type ClamdConfig =
  | { readonly kind: "socket"; readonly path: string; readonly timeoutMs: number }
  | { readonly kind: "tcp"; readonly host: string; readonly port: number; readonly timeoutMs: number };

/** Largest object accepted per media kind, in bytes. */
export interface SizeLimits {
  readonly image: number;
  readonly audio: number;
  readonly video: number;
  readonly text: number;
  readonly other: number;
}

/**
 * Server-wide ceilings on what a media header may claim, applied to every upload whatever its pin says:
 * a PNG header can claim 2^31-1 × 2^31-1 pixels, which no downstream agent could decode. 0 turns one off.
 */
export interface MediaCeilings {
  /** Widest or tallest image or video frame, in pixels. */
  readonly maxDimensionPx: number;
  /** Most pixels in one image or video frame (width × height). */
  readonly maxPixels: number;
  /** Longest audio or video, in seconds. */
  readonly maxDurationSeconds: number;
}

/** The variable that sets each ceiling, named in refusals so an operator knows what to raise. */
export const ceilingVariables: Readonly<Record<keyof MediaCeilings, string>> = {
  maxDimensionPx: "STORAGE_MAX_DIMENSION_PX",
  maxPixels: "STORAGE_MAX_PIXELS",
  maxDurationSeconds: "STORAGE_MAX_DURATION_SECONDS",
};

export interface StorageConfig {
  readonly backend: BackendConfig;
  /** Redis for quotas and the L2 reference cache; absent keeps both in this process. */
  readonly redisUrl: string | undefined;
  /** Without Redis, the embedded database file that keeps quotas and the ref index; absent keeps quotas in memory and refs as blob-store documents. */
  readonly databaseFile: string | undefined;
  /** Longest any call waits on Redis before it answers UNAVAILABLE. */
  readonly redisTimeoutMs: number;
  readonly limits: SizeLimits;
  readonly ceilings: MediaCeilings;
  readonly userQuotaBytes: number;
  readonly workspaceQuotaBytes: number;
  readonly clamd: ClamdConfig | undefined;
  /** HMAC secret for presigned GET URLs. */
  readonly presignSecret: string;
  /** Base URL presigned links point at, e.g. `http://127.0.0.1:8080`. */
  readonly publicUrl: string;
  readonly mediaTtlSeconds: number;
  readonly mediaArchiveAfterSeconds: number;
  readonly tempTtlSeconds: number;
  /** How long an unfinished resumable upload is kept. */
  readonly uploadTtlSeconds: number;
  /** How often expired objects and abandoned uploads are swept; 0 turns the sweeper off. */
  readonly sweepIntervalMs: number;
  readonly cacheL1MaxEntries: number;
  readonly cacheL1TtlMs: number;
  readonly cacheL2TtlSeconds: number;
  /** Chunk size for Download of media that is neither audio, video nor text. */
  readonly defaultChunkBytes: number;
  /** Path of the ffprobe binary used for audio and video metadata. */
  readonly ffprobePath: string;
  /** `STORAGE_FFPROBE_TIMEOUT_SECONDS`, default 60: longest one ffprobe run may take over one upload. */
  readonly ffprobeTimeoutMs: number;
}

const MiB = 1024 * 1024;
const GB = 1000 * 1000 * 1000;

function clamdFromEnv(env: Env): ClamdConfig | undefined {
  const timeoutMs = integerVar(env, "CLAMD_TIMEOUT_MS", 30_000);
  if (env.CLAMD_SOCKET) return { kind: "socket", path: env.CLAMD_SOCKET, timeoutMs };
  if (env.CLAMD_HOST) return { kind: "tcp", host: env.CLAMD_HOST, port: integerVar(env, "CLAMD_PORT", 3310), timeoutMs };
  return undefined;
}

function backendFromEnv(env: Env, dataDir: string): BackendConfig {
  if (env.S3_ENDPOINT || env.S3_BUCKET) {
    if (!env.S3_ENDPOINT || !env.S3_BUCKET) {
      const [unset, set] = env.S3_ENDPOINT ? ["S3_BUCKET", "S3_ENDPOINT"] : ["S3_ENDPOINT", "S3_BUCKET"];
      throw new ConfigError(unset, `set together with ${set}`, "", `only ${set} is set`);
    }
    return {
      kind: "s3",
      endpoint: env.S3_ENDPOINT,
      bucket: env.S3_BUCKET,
      region: env.S3_REGION ?? "us-east-1",
      accessKeyId: env.AWS_ACCESS_KEY_ID,
      secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
      archiveStorageClass: env.S3_ARCHIVE_STORAGE_CLASS ?? "GLACIER",
      requestTimeoutMs: integerVar(env, "S3_REQUEST_TIMEOUT_MS", 10_000),
    };
  }
  return { kind: "file", root: env.STORAGE_DIR ?? join(dataDir, "storage") };
}

/**
 * What a composition root may settle itself rather than leave to the variables: the presign secret
 * (generated in the data dir when MENTATLAB_PRESIGN_SECRET is unset) and the public URL (known once
 * "any free port" is picked). Each given here wins over its variable.
 */
export interface StorageLinks {
  readonly presignSecret?: string;
  readonly publicUrl?: string;
}

/** Reads the storage service's configuration; every variable has a default except the presign secret. */
export function storageConfigFromEnv(env: Env, dataDir: string, links: StorageLinks = {}): StorageConfig {
  const presignSecret = links.presignSecret ?? env.MENTATLAB_PRESIGN_SECRET ?? "";
  if (presignSecret.length < 16) {
    throw new ConfigError("MENTATLAB_PRESIGN_SECRET", "at least 16 characters", "", presignSecret ? `it has ${presignSecret.length}` : "it is not set");
  }
  const port = portVar(env, "PORT", 8080);
  return {
    backend: backendFromEnv(env, dataDir),
    redisUrl: env.REDIS_URL || undefined,
    databaseFile: env.REDIS_URL ? undefined : databaseFileFromEnv(env, dataDir),
    redisTimeoutMs: redisTimeoutMsFromEnv(env),
    limits: {
      image: integerVar(env, "STORAGE_MAX_IMAGE_BYTES", 50 * MiB),
      audio: integerVar(env, "STORAGE_MAX_AUDIO_BYTES", 500 * MiB),
      video: integerVar(env, "STORAGE_MAX_VIDEO_BYTES", 5 * 1024 * MiB),
      text: integerVar(env, "STORAGE_MAX_TEXT_BYTES", 10 * MiB),
      other: integerVar(env, "STORAGE_MAX_OTHER_BYTES", 1024 * MiB),
    },
    ceilings: {
      // JPEG's own maximum side.
      maxDimensionPx: integerVar(env, ceilingVariables.maxDimensionPx, 65_535),
      // What sharp, the image agents' library, accepts by default.
      maxPixels: integerVar(env, ceilingVariables.maxPixels, 16_383 * 16_383),
      maxDurationSeconds: integerVar(env, ceilingVariables.maxDurationSeconds, 86_400),
    },
    userQuotaBytes: integerVar(env, "STORAGE_USER_QUOTA_BYTES", 10 * GB),
    workspaceQuotaBytes: integerVar(env, "STORAGE_WORKSPACE_QUOTA_BYTES", 100 * GB),
    clamd: clamdFromEnv(env),
    presignSecret,
    publicUrl: (links.publicUrl ?? env.MENTATLAB_PUBLIC_URL ?? `http://127.0.0.1:${port}`).replace(/\/+$/, ""),
    mediaTtlSeconds: integerVar(env, "STORAGE_MEDIA_TTL_SECONDS", 7 * 86_400),
    mediaArchiveAfterSeconds: integerVar(env, "STORAGE_MEDIA_ARCHIVE_AFTER_SECONDS", 86_400),
    tempTtlSeconds: integerVar(env, "STORAGE_TEMP_TTL_SECONDS", 3_600),
    uploadTtlSeconds: integerVar(env, "STORAGE_UPLOAD_TTL_SECONDS", 86_400),
    sweepIntervalMs: integerVar(env, "STORAGE_SWEEP_INTERVAL_MS", 60_000),
    cacheL1MaxEntries: integerVar(env, "STORAGE_CACHE_L1_MAX_ENTRIES", 10_000),
    cacheL1TtlMs: integerVar(env, "STORAGE_CACHE_L1_TTL_MS", 60_000),
    cacheL2TtlSeconds: integerVar(env, "STORAGE_CACHE_L2_TTL_SECONDS", 3_600),
    defaultChunkBytes: integerVar(env, "STORAGE_DEFAULT_CHUNK_BYTES", 64 * 1024),
    ffprobePath: env.FFPROBE_PATH ?? "ffprobe",
    ffprobeTimeoutMs: numberVar(env, "STORAGE_FFPROBE_TIMEOUT_SECONDS", 60, { exclusiveMin: 0 }) * 1000,
  };
}
