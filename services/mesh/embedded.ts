import { createClient, createRouterTransport } from "@connectrpc/connect";
import { createServer, type AddressInfo } from "node:net";
import { StorageService } from "../../gen/mentatlab/v1/storage_pb.js";
import { StreamService } from "../../gen/mentatlab/v1/stream_pb.js";
import { orchestratorConfigFromEnv } from "../orchestrator/config.js";
import { orchestratorModule } from "../orchestrator/mesh-module.js";
import { readServerConfig } from "../server/config.js";
import type { Env } from "../shared/env.js";
import { createTelemetry } from "../shared/telemetry/index.js";
import { storageConfigFromEnv } from "../storage/config.js";
import { storageModule } from "../storage/mesh-module.js";
import { streamConfigFromEnv } from "../stream/config.js";
import { streamModule } from "../stream/mesh-module.js";
import { websocketConfigFromEnv } from "../stream/websocket-config.js";
import { meshSecurity } from "./security.js";
import { builtWebUi, serveMeshModules, type MeshProcess } from "./serve.js";

export interface EmbeddedOptions {
  /** Environment to read configuration from; defaults to `process.env`. */
  readonly env?: Env;
  /** Overrides `PORT`; 0 picks a free port. */
  readonly port?: number;
  /** Overrides `MENTATLAB_DATA_DIR`. */
  readonly dataDir?: string;
}

export interface EmbeddedMesh extends MeshProcess {
  /** The development admin key, when no keys were configured and one was created. */
  readonly adminKey: string | undefined;
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, host, () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

function urlHost(host: string): string {
  if (host === "0.0.0.0" || host === "::") return "127.0.0.1";
  return host.includes(":") ? `[${host}]` : host;
}

/**
 * Every service in one process on one port, with embedded backends: objects as files under the data
 * dir, quotas, refs, runs and agents in the embedded database beside them, streams in memory (or Redis and S3
 * when their variables are set). The services still talk to each
 * other only through Connect clients, here over an in-memory transport that runs the same auth.
 */
export async function startEmbedded(options: EmbeddedOptions = {}): Promise<EmbeddedMesh> {
  const env: Env = {
    ...(options.env ?? process.env),
    ...(options.port !== undefined ? { PORT: String(options.port) } : {}),
    ...(options.dataDir !== undefined ? { MENTATLAB_DATA_DIR: options.dataDir } : {}),
  };
  const security = meshSecurity(env);
  const configured = readServerConfig(env);
  // Links the services hand out (presigned media URLs, SSE paths) and the URL agents' sidecars call
  // back on need the real port before anything listens, so "any free port" is settled here rather
  // than by the listener.
  const port = configured.port === 0 ? await freePort(configured.host) : configured.port;
  const serverConfig = { ...configured, port };
  const ownUrl = `http://${urlHost(configured.host)}:${port}`;

  const telemetry = createTelemetry(env);
  const storage = await storageModule(
    storageConfigFromEnv(env, security.config.dataDir, { presignSecret: security.config.presignSecret, publicUrl: env.MENTATLAB_PUBLIC_URL ?? ownUrl }),
  );
  const streams = await streamModule(streamConfigFromEnv(env), { websocket: websocketConfigFromEnv(env), tokenSecret: security.config.tokenSecret });
  const internal = createRouterTransport(
    (router) => {
      storage.mount(router);
      streams.mount(router);
    },
    { router: { interceptors: security.interceptors }, transport: { interceptors: security.tracing.clientInterceptors } },
  );
  const orchestrator = await orchestratorModule(orchestratorConfigFromEnv(env, security.config.dataDir), {
    storage: createClient(StorageService, internal),
    streams: createClient(StreamService, internal),
    runTokens: security.runTokens,
    gatewayUrl: ownUrl,
    hostEnv: process.env,
  });

  const mesh = await serveMeshModules(serverConfig, security, telemetry, [storage, streams, orchestrator], { staticDir: builtWebUi() });
  return { ...mesh, adminKey: security.devKey?.key };
}
