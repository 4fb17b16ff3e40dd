import { createClient, createRouterTransport, type ConnectRouter } from "@connectrpc/connect";
import { createServer, type AddressInfo } from "node:net";
import { OrchestratorService } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { AgentRegistryService } from "../../gen/mentatlab/v1/registry_pb.js";
import { StorageService } from "../../gen/mentatlab/v1/storage_pb.js";
import { StreamService } from "../../gen/mentatlab/v1/stream_pb.js";
import { createOrchestrator } from "../orchestrator/index.js";
import { orchestratorConfigFromEnv } from "../orchestrator/config.js";
import { readServerConfig } from "../server/config.js";
import type { Env } from "../shared/config.js";
import { createTelemetry, registerOrchestratorMetrics, registerStorageMetrics, registerStreamMetrics } from "../shared/telemetry/index.js";
import { createStorage } from "../storage/index.js";
import { storageConfigFromEnv } from "../storage/config.js";
import { createStreams } from "../stream/index.js";
import { streamConfigFromEnv } from "../stream/config.js";
import { meshSecurity } from "./security.js";
import { builtWebUi, serveMeshProcess, type MeshProcess } from "./serve.js";

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
  const given: Env = {
    ...(options.env ?? process.env),
    ...(options.port !== undefined ? { PORT: String(options.port) } : {}),
    ...(options.dataDir !== undefined ? { MENTATLAB_DATA_DIR: options.dataDir } : {}),
  };
  const security = meshSecurity(given);
  const configured = readServerConfig(given);
  // Links the services hand out (presigned media URLs, SSE paths) need the real port before anything
  // listens, so "any free port" is settled here rather than by the listener.
  const port = configured.port === 0 ? await freePort(configured.host) : configured.port;
  const serverConfig = { ...configured, port };
  const env: Env = {
    ...given,
    PORT: String(port),
    MENTATLAB_PRESIGN_SECRET: security.config.presignSecret,
    MENTATLAB_PUBLIC_URL: given.MENTATLAB_PUBLIC_URL ?? `http://${urlHost(configured.host)}:${port}`,
  };

  const telemetry = createTelemetry(env);
  const storage = await createStorage(storageConfigFromEnv(env, security.config.dataDir));
  const streams = await createStreams(streamConfigFromEnv(env));
  const mountData = (router: ConnectRouter) => {
    router.service(StorageService, storage.impl);
    router.service(StreamService, streams.impl);
  };
  const internal = createRouterTransport(mountData, {
    router: { interceptors: security.interceptors },
    transport: { interceptors: security.tracing.clientInterceptors },
  });

  let gatewayUrl = "";
  const orchestrator = await createOrchestrator(orchestratorConfigFromEnv(env, security.config.dataDir), {
    storage: createClient(StorageService, internal),
    streams: createClient(StreamService, internal),
    runTokens: security.runTokens,
    gatewayUrl: () => gatewayUrl,
  });
  registerStorageMetrics(telemetry.meter, storage.metrics);
  registerStreamMetrics(telemetry.meter, streams.metrics);
  registerOrchestratorMetrics(telemetry.meter, orchestrator.metrics);

  const mesh = await serveMeshProcess(serverConfig, security, telemetry, {
    routes: (router) => {
      mountData(router);
      router.service(AgentRegistryService, orchestrator.registryImpl);
      router.service(OrchestratorService, orchestrator.orchestratorImpl);
    },
    httpRoutes: [...storage.routes, ...streams.routes],
    encodedStreams: streams.encodedStreams,
    staticDir: builtWebUi(),
    async close() {
      await orchestrator.close();
      await streams.close();
      await storage.close();
    },
  });
  gatewayUrl = mesh.url;
  return { ...mesh, adminKey: security.devKey?.key };
}
