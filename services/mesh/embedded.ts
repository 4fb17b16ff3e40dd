import { createClient, createRouterTransport } from "@connectrpc/connect";
import { createServer, type AddressInfo } from "node:net";
import { StorageService } from "../../gen/mentatlab/v1/storage_pb.js";
import { StreamService } from "../../gen/mentatlab/v1/stream_pb.js";
import { orchestratorConfigFromEnv } from "../orchestrator/config.js";
import { orchestratorModule } from "../orchestrator/mesh-module.js";
import { readServerConfig, type ServerConfig } from "../server/config.js";
import type { MeshModule } from "../server/mesh-module.js";
import type { Env } from "../shared/env.js";
import { createTelemetry, type Telemetry } from "../shared/telemetry/index.js";
import { storageConfigFromEnv } from "../storage/config.js";
import { storageModule } from "../storage/mesh-module.js";
import { streamConfigFromEnv } from "../stream/config.js";
import { streamModule } from "../stream/mesh-module.js";
import { websocketConfigFromEnv } from "../stream/websocket-config.js";
import { meshSecurity, type MeshSecurity } from "./security.js";
import { builtWebUi, fetchMeshProcess, meshAppOf, serveMeshModules, type FetchMeshProcess, type MeshProcess } from "./serve.js";

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

/** The embedded mesh before anything listens: its settings, security, telemetry and service modules. */
interface EmbeddedParts {
  /** The server settings, the port settled. */
  readonly serverConfig: ServerConfig;
  readonly security: MeshSecurity;
  readonly telemetry: Telemetry;
  /** Callees first: storage and streams, then the orchestrator calling them. */
  readonly modules: readonly MeshModule[];
  /** The URL the mesh hands out in links and gives agents' sidecars. */
  readonly url: string;
}

/**
 * Builds every service with embedded backends: objects as files under the data dir, quotas, refs,
 * runs and agents in the embedded database beside them, streams in memory (or Redis and S3 when
 * their variables are set). The services still talk to each other only through Connect clients,
 * here over an in-memory transport that runs the same auth.
 */
async function embeddedParts(options: EmbeddedOptions): Promise<EmbeddedParts> {
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
  return { serverConfig, security, telemetry, modules: [storage, streams, orchestrator], url: ownUrl };
}

/** Every service in one process on one port (see `embeddedParts`), on Node's server. */
export async function startEmbedded(options: EmbeddedOptions = {}): Promise<EmbeddedMesh> {
  const { serverConfig, security, telemetry, modules } = await embeddedParts(options);
  const mesh = await serveMeshModules(serverConfig, security, telemetry, modules, { staticDir: builtWebUi() });
  return { ...mesh, adminKey: security.devKey?.key };
}

/** The embedded mesh as a Fetch-API handler, for a runtime that listens itself (Bun, Deno). */
export interface FetchEmbeddedMesh extends FetchMeshProcess {
  /** Where to listen: the interface and the port (already settled when `PORT` was 0). */
  readonly serverConfig: ServerConfig;
  readonly url: string;
  /** The development admin key, when no keys were configured and one was created. */
  readonly adminKey: string | undefined;
}

/** The same services as `startEmbedded`, served by a Fetch-API handler instead of Node's server. */
export async function fetchEmbedded(options: EmbeddedOptions = {}): Promise<FetchEmbeddedMesh> {
  const { serverConfig, security, telemetry, modules, url } = await embeddedParts(options);
  const process = fetchMeshProcess(serverConfig, security, telemetry, meshAppOf(telemetry, modules, { staticDir: builtWebUi() }));
  return { ...process, serverConfig, url, adminKey: security.devKey?.key };
}
