import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { connect } from "node:net";
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ClamdServer, EICAR, EICAR_SIGNATURE_NAME, requireTool, type S3Server, startClamd, startRedis, startS3 } from "./index.js";

/** Local addresses of TCP sockets in LISTEN state on `port`, read from the kernel's table. */
function listenAddresses(port: number): string[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  const found: string[] = [];
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      const local = fields[1];
      if (local === undefined || fields[3] !== "0A") continue;
      const [addr, p] = local.split(":");
      if (p === hexPort && addr !== undefined) found.push(addr);
    }
  }
  return found;
}

// 127.0.0.1 as /proc/net/tcp prints it (little-endian hex).
const LOOPBACK_HEX = "0100007F";

/** INSTREAM over clamd's unix socket; the reply is read while writing, as clamd may hang up early. */
function clamdScan(socketPath: string, data: Uint8Array, chunkSize = 64 * 1024): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ path: socketPath });
    const replies: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => replies.push(chunk));
    socket.once("error", reject);
    socket.once("close", () => {
      const reply = Buffer.concat(replies);
      const end = reply.indexOf(0);
      resolve(reply.subarray(0, end === -1 ? reply.length : end).toString("utf8"));
    });
    socket.once("connect", () => {
      socket.write("zINSTREAM\0");
      for (let offset = 0; offset < data.length; offset += chunkSize) {
        const chunk = data.subarray(offset, offset + chunkSize);
        const header = Buffer.alloc(4);
        header.writeUInt32BE(chunk.length);
        socket.write(header);
        socket.write(chunk);
      }
      socket.write(Buffer.alloc(4));
    });
  });
}

describe("requireTool", () => {
  it("names what to install when a binary is missing", () => {
    expect(() => requireTool("mentatlab-no-such-tool", "apt-get install -y mentatlab-no-such-tool")).toThrow(
      "mentatlab-no-such-tool not found: apt-get install -y mentatlab-no-such-tool",
    );
  });

  it("resolves daemons that live in sbin", () => {
    expect(requireTool("clamd", "apt-get install -y clamav-daemon")).toMatch(/\/clamd$/);
  });
});

describe("redis harness", () => {
  it("serves SET/GET on a loopback-only port", async () => {
    const server = await startRedis();
    const client = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
      expect(listenAddresses(server.port)).toEqual([LOOPBACK_HEX]);
      await client.connect();
      await client.set("greeting", "hello");
      expect(await client.get("greeting")).toBe("hello");
    } finally {
      client.disconnect();
      await server.stop();
    }
    expect(server.running).toBe(false);
  });

  it("keeps data across restart() and kill() with persistence, on the same port", async () => {
    const server = await startRedis({ persistence: true });
    const port = server.port;
    // Each step opens its own connection so the assertions do not depend on client reconnect logic.
    const withClient = async <T>(fn: (c: Redis) => Promise<T>): Promise<T> => {
      const client = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
      try {
        await client.connect();
        return await fn(client);
      } finally {
        client.disconnect();
      }
    };
    try {
      await withClient((c) => c.set("survivor", "graceful"));
      await server.restart();
      expect(server.port).toBe(port);
      expect(await withClient((c) => c.get("survivor"))).toBe("graceful");

      // Redis writes the AOF before it replies, so an acknowledged write survives SIGKILL.
      await withClient((c) => c.set("survivor", "crash"));
      await server.kill();
      expect(server.running).toBe(false);
      await server.start();
      expect(await withClient((c) => c.get("survivor"))).toBe("crash");
    } finally {
      await server.stop();
    }
  });

  it("forgets data across restart() without persistence", async () => {
    const server = await startRedis();
    try {
      const client = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
      await client.connect();
      await client.set("ephemeral", "1");
      client.disconnect();
      await server.restart();
      const again = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
      await again.connect();
      expect(await again.get("ephemeral")).toBeNull();
      again.disconnect();
    } finally {
      await server.stop();
    }
  });
});

describe("s3 harness", () => {
  let s3: S3Server;
  let client: S3Client;

  beforeAll(async () => {
    s3 = await startS3();
    client = new S3Client(s3.clientConfig);
  });

  afterAll(async () => {
    client?.destroy();
    await s3?.stop();
  });

  it("listens on loopback only", () => {
    const url = new URL(s3.endpoint);
    expect(url.hostname).toBe("127.0.0.1");
    expect(listenAddresses(Number(url.port))).toEqual([LOOPBACK_HEX]);
  });

  it("puts and gets an object in the fresh bucket", async () => {
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: "hello.txt", Body: "hello, mesh" }));
    const got = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: "hello.txt" }));
    expect(await got.Body?.transformToString()).toBe("hello, mesh");
  });

  it("reads back a 12 MiB multipart upload byte for byte", async () => {
    const bucket = await s3.createBucket("multipart-check");
    const payload = randomBytes(12 * 1024 * 1024);
    const upload = new Upload({
      client,
      params: { Bucket: bucket, Key: "big.bin", Body: payload },
      partSize: 5 * 1024 * 1024,
      queueSize: 2,
    });
    let parts = 0;
    upload.on("httpUploadProgress", (p) => {
      if (p.part !== undefined) parts = Math.max(parts, p.part);
    });
    await upload.done();
    expect(parts).toBe(3);

    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: "big.bin" }));
    const body = await got.Body?.transformToByteArray();
    expect(body?.length).toBe(payload.length);
    const digest = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");
    expect(digest(body ?? new Uint8Array())).toBe(digest(payload));
    expect(Buffer.compare(Buffer.from(body ?? new Uint8Array()), payload)).toBe(0);
  });

  it("stop() ends the server", async () => {
    const other = await startS3();
    await other.stop();
    const c = new S3Client({ ...other.clientConfig, maxAttempts: 1 });
    await expect(c.send(new GetObjectCommand({ Bucket: other.bucket, Key: "x" }))).rejects.toThrow();
    c.destroy();
  });
});

describe("clamd harness", () => {
  let clamd: ClamdServer;

  beforeAll(async () => {
    clamd = await startClamd();
  });

  afterAll(async () => {
    await clamd?.stop();
  });

  it("finds EICAR via INSTREAM", async () => {
    const reply = await clamdScan(clamd.socketPath, Buffer.from(EICAR, "latin1"));
    expect(reply).toMatch(/^stream: \S+ FOUND$/);
    expect(reply).toContain(EICAR_SIGNATURE_NAME);
  });

  it("passes clean bytes via INSTREAM", async () => {
    const reply = await clamdScan(clamd.socketPath, randomBytes(200 * 1024));
    expect(reply).toBe("stream: OK");
  });

  it("finds EICAR embedded in a larger stream split across chunks", async () => {
    const data = Buffer.concat([randomBytes(100_000), Buffer.from(EICAR, "latin1"), randomBytes(100_000)]);
    // A 7-byte chunk size puts the signature across many chunk boundaries.
    const reply = await clamdScan(clamd.socketPath, data.subarray(99_990, 100_090), 7);
    expect(reply).toContain("FOUND");
  });
});
