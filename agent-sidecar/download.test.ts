import { randomBytes, createHash } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StorageService } from "../gen/mentatlab/v1/storage_pb.js";
import { downloadToFile } from "./download.js";
import { startDataPlane, type DataPlane } from "./testing.js";
import { uploadFile } from "./upload.js";

const backoff = { initialMs: 50, maxMs: 300 };

describe("downloadToFile and uploadFile against the real StorageService", () => {
  let dir: string;
  let plane: DataPlane;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "download-"));
    plane = await startDataPlane(join(dir, "data"));
  });
  afterAll(async () => {
    await plane?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** A storage client whose calls pass `observe` (for counting chunks and crashing the gateway mid-call). */
  function storageClient(observe: Interceptor) {
    const token = plane.runToken("run-1", "dl");
    const bearer: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Bearer ${token}`);
      return next(req);
    };
    return createClient(StorageService, createGrpcTransport({ baseUrl: plane.url, interceptors: [bearer, observe], acceptCompression: [] }));
  }

  it("resumes at the next missing byte after the gateway dies mid-download and verifies the whole file", async () => {
    const source = join(dir, "big.bin");
    const bytes = randomBytes(6 * 1024 * 1024 + 123);
    await writeFile(source, bytes);
    const offsets: bigint[] = [];
    let chunksSeen = 0;
    let crashed = false;
    const crashOnce: Interceptor = (next) => async (req) => {
      // connect sends even a server-streaming call's single request as a stream.
      if (req.method.name !== "Download" || !req.stream) return next(req);
      const requests = req.message;
      const recorded = (async function* () {
        for await (const message of requests) {
          offsets.push((message as unknown as { offset: bigint }).offset);
          yield message;
        }
      })();
      const res = await next({ ...req, message: recorded });
      if (!res.stream) return res;
      const messages = res.message;
      return {
        ...res,
        message: (async function* () {
          for await (const message of messages) {
            yield message;
            if (++chunksSeen === 5 && !crashed) {
              crashed = true;
              void plane.kill().then(() => setTimeout(() => void plane.restart(), 200));
            }
          }
        })(),
      };
    };
    const storage = storageClient(crashOnce);
    const ref = await uploadFile(storage, source, { attempts: 3, backoff });
    expect(ref.sha256).toBe(createHash("sha256").update(bytes).digest("hex"));

    const target = join(dir, "big.copy");
    await downloadToFile(storage, ref, target, { attempts: 10, backoff });
    expect(crashed).toBe(true);
    expect(offsets.length).toBeGreaterThanOrEqual(2);
    expect(offsets[0]).toBe(0n);
    expect(offsets.at(-1)).toBeGreaterThan(0n);
    expect((await readFile(target)).equals(bytes)).toBe(true);
    await expect(stat(`${target}.partial`)).rejects.toThrow();
  });

  it("fails with NOT_FOUND, not retries, for an object of another workspace", async () => {
    const source = join(dir, "small.bin");
    await writeFile(source, randomBytes(1000));
    const ownerToken = plane.runToken("run-1", "owner", "alice", "ws-a");
    const bearer =
      (token: string): Interceptor =>
      (next) =>
      (req) => {
        req.header.set("authorization", `Bearer ${token}`);
        return next(req);
      };
    const client = (token: string) =>
      createClient(StorageService, createGrpcTransport({ baseUrl: plane.url, interceptors: [bearer(token)], acceptCompression: [] }));
    const ref = await uploadFile(client(ownerToken), source, { attempts: 1, backoff });
    let calls = 0;
    const counting: Interceptor = (next) => (req) => {
      calls++;
      return next(req);
    };
    const stranger = createClient(
      StorageService,
      createGrpcTransport({ baseUrl: plane.url, interceptors: [bearer(plane.runToken("run-2", "x", "bob", "ws-b")), counting], acceptCompression: [] }),
    );
    await expect(downloadToFile(stranger, ref, join(dir, "stolen.bin"), { attempts: 5, backoff })).rejects.toMatchObject({ code: Code.NotFound });
    expect(calls).toBe(1);
  });
});
