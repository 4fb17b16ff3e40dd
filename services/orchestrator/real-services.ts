import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Client, createClient, createRouterTransport } from "@connectrpc/connect";
import { StorageService } from "../../gen/mentatlab/v1/storage_pb.js";
import { StreamService } from "../../gen/mentatlab/v1/stream_pb.js";
import { Authenticator } from "../shared/auth/authenticator.js";
import { authInterceptor } from "../shared/auth/interceptor.js";
import type { RunTokenSigner } from "../shared/run-token.js";
import { createStorage, type StorageRuntime, storageConfigFromEnv } from "../storage/index.js";
import { createStreams, type StreamRuntime, streamConfigFromEnv } from "../stream/index.js";

/**
 * The real StorageService and StreamService (file-backed, in memory) behind the real auth interceptor,
 * for orchestrator tests: calls carrying a node's run token act as that node, as in production.
 */
export class RealServices {
  readonly storage: Client<typeof StorageService>;
  readonly streams: Client<typeof StreamService>;

  private constructor(
    private readonly dir: string,
    private readonly storageRuntime: StorageRuntime,
    private readonly streamRuntime: StreamRuntime,
    runTokens: RunTokenSigner,
  ) {
    const interceptors = [authInterceptor(new Authenticator([], runTokens), new Set())];
    this.storage = createClient(StorageService, createRouterTransport((r) => r.service(StorageService, storageRuntime.impl), { router: { interceptors } }));
    this.streams = createClient(StreamService, createRouterTransport((r) => r.service(StreamService, streamRuntime.impl), { router: { interceptors } }));
  }

  static async start(runTokens: RunTokenSigner): Promise<RealServices> {
    const dir = mkdtempSync(join(tmpdir(), "orch-services-"));
    const storage = await createStorage(storageConfigFromEnv({ MENTATLAB_PRESIGN_SECRET: "orchestrator-test-presign", STORAGE_SWEEP_INTERVAL_MS: "0" }, dir));
    const streams = await createStreams(streamConfigFromEnv({}));
    return new RealServices(dir, storage, streams, runTokens);
  }

  async close(): Promise<void> {
    await this.streamRuntime.close();
    await this.storageRuntime.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
