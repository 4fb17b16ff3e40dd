import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { CreateBucketCommand, S3Client, type S3ClientConfig } from "@aws-sdk/client-s3";
import { LOOPBACK } from "./ports.js";
import { spawnManaged, waitUntilReady } from "./process.js";

export interface S3Server {
  /** `http://127.0.0.1:PORT`; clients need `forcePathStyle: true`. */
  readonly endpoint: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** A bucket created for this server. */
  readonly bucket: string;
  /** Ready-made config for `new S3Client(...)`. */
  readonly clientConfig: S3ClientConfig;
  /** Creates a bucket through the S3 API and returns its name. */
  createBucket(name: string): Promise<string>;
  stop(): Promise<void>;
  /** SIGKILLs the server, as a crash would, for fault tests. */
  kill(): Promise<void>;
  /** SIGSTOPs the server: connections stay open and nothing answers, as with a hung host. */
  freeze(): void;
  /** SIGCONTs a frozen server. */
  thaw(): void;
}

/** The mesh's variables that point its storage at `s3` (README, "Configuration"). */
export function s3Env(s3: S3Server): Record<string, string> {
  return {
    S3_ENDPOINT: s3.endpoint,
    S3_BUCKET: s3.bucket,
    S3_REGION: s3.region,
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
  };
}

const SERVER_SCRIPT = fileURLToPath(new URL("./s3-server.ts", import.meta.url));
const REGION = "us-east-1";
// fauxqs accepts any credentials (it does not verify signatures); these only have to be well-formed.
const ACCESS_KEY_ID = "mentatlab-test";
const SECRET_ACCESS_KEY = "mentatlab-test-secret";

/**
 * Starts fauxqs (an in-memory S3 emulator) in a child Node process on a random loopback port.
 * It does not enforce signatures or checksums: tests must not claim more than that.
 */
export async function startS3(): Promise<S3Server> {
  const proc = spawnManaged(process.execPath, ["--disable-warning=ExperimentalWarning", SERVER_SCRIPT], {
    env: { ...process.env, MENTATLAB_S3_REGION: REGION },
    // Closing this pipe is how the child learns that the test process is gone.
    stdin: "pipe",
  });
  let port = 0;
  let stdoutLine = "";
  proc.child.stdout?.on("data", (chunk: Buffer) => {
    if (port !== 0) return;
    stdoutLine += chunk.toString("utf8");
    const newline = stdoutLine.indexOf("\n");
    if (newline === -1) return;
    const parsed: unknown = JSON.parse(stdoutLine.slice(0, newline));
    if (typeof parsed === "object" && parsed !== null && "port" in parsed && typeof parsed.port === "number") {
      port = parsed.port;
    }
  });
  await waitUntilReady("fauxqs S3 server", proc, async () => port !== 0);

  const endpoint = `http://${LOOPBACK}:${port}`;
  const clientConfig: S3ClientConfig = {
    endpoint,
    region: REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY },
  };
  const admin = new S3Client(clientConfig);
  const createBucket = async (name: string): Promise<string> => {
    await admin.send(new CreateBucketCommand({ Bucket: name }));
    return name;
  };

  let bucket: string;
  try {
    bucket = await createBucket(`test-${randomUUID().slice(0, 8)}`);
  } catch (err) {
    admin.destroy();
    await proc.terminate("SIGKILL");
    throw err;
  }

  let stopped = false;
  return {
    endpoint,
    region: REGION,
    accessKeyId: ACCESS_KEY_ID,
    secretAccessKey: SECRET_ACCESS_KEY,
    bucket,
    clientConfig,
    createBucket,
    async stop() {
      if (stopped) return;
      stopped = true;
      admin.destroy();
      proc.child.stdin?.end();
      await proc.terminate("SIGTERM", 5_000);
    },
    async kill() {
      stopped = true;
      admin.destroy();
      await proc.terminate("SIGKILL");
    },
    freeze() {
      proc.child.kill("SIGSTOP");
    },
    thaw() {
      proc.child.kill("SIGCONT");
    },
  };
}
