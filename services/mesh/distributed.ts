import type { DescService } from "@bufbuild/protobuf";
import { createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { StorageService } from "../../gen/mentatlab/v1/storage_pb.js";
import { StreamService } from "../../gen/mentatlab/v1/stream_pb.js";
import { forwardingImpl } from "../gateway/forward.js";
import { proxyRoute } from "../gateway/http-proxy.js";
import { proxyUpgrade } from "../gateway/upgrade-proxy.js";
import { relayMethod, relayService } from "../gateway/relay.js";
import { sharedSubscribe } from "../gateway/shared-subscribe.js";
import { UpstreamSession } from "../gateway/upstream-session.js";
import { orchestratorConfigFromEnv } from "../orchestrator/config.js";
import { orchestratorModule } from "../orchestrator/mesh-module.js";
import { readServerConfig } from "../server/config.js";
import type { MeshModule } from "../server/mesh-module.js";
import type { Env } from "../shared/env.js";
import { createTelemetry } from "../shared/telemetry/index.js";
import { storageConfigFromEnv } from "../storage/config.js";
import { storageModule } from "../storage/mesh-module.js";
import { streamConfigFromEnv } from "../stream/config.js";
import { streamModule } from "../stream/mesh-module.js";
import { websocketConfigFromEnv } from "../stream/websocket-config.js";
import { meshSecurity, type MeshSecurity } from "./security.js";
import { builtWebUi, serveMeshModules, serveMeshProcess, type MeshProcess } from "./serve.js";
import { httpPathsOwned, httpPostPathsOwned, serviceOwners, serviceProcesses, serviceUrlVariable, type ServiceProcess, upgradePathsOwned } from "./topology.js";

/** A gRPC (h2c) transport to a peer process: the internal hop of the distributed mesh. */
export function peerTransport(baseUrl: string, interceptors: Interceptor[] = []): Transport {
  // Media bytes dominate internal traffic and do not compress; see docs/wire-speed.md.
  return createGrpcTransport({ baseUrl, acceptCompression: [], sendCompression: undefined, interceptors });
}

function requiredUrl(env: Env, name: string): string {
  const url = env[name];
  if (!url) throw new Error(`${name} must be set to the URL of that service (e.g. http://127.0.0.1:8081)`);
  return url;
}

export type { MeshProcess };

/** How each service process builds its one module from the environment. */
const serviceModules: Record<ServiceProcess, (env: Env, security: MeshSecurity) => Promise<MeshModule>> = {
  storage: (env, security) => storageModule(storageConfigFromEnv(env, security.config.dataDir)),
  stream: (env, security) => streamModule(streamConfigFromEnv(env), { websocket: websocketConfigFromEnv(env), tokenSecret: security.config.tokenSecret }),
  orchestrator: (env, security) =>
    orchestratorModule(orchestratorConfigFromEnv(env, security.config.dataDir), {
      storage: createClient(StorageService, peerTransport(requiredUrl(env, serviceUrlVariable.storage), security.tracing.clientInterceptors)),
      streams: createClient(StreamService, peerTransport(requiredUrl(env, serviceUrlVariable.stream), security.tracing.clientInterceptors)),
      runTokens: security.runTokens,
      gatewayUrl: requiredUrl(env, "MENTATLAB_GATEWAY_URL"),
      hostEnv: process.env,
    }),
};

/**
 * Runs one service alone (`mentatlab serve storage|stream|orchestrator`). It authenticates every call
 * itself, with the same keys as the gateway, because the caller's principal scopes all its data;
 * request rules were already checked once at the gateway.
 */
export async function startServiceProcess(name: ServiceProcess, env: Env): Promise<MeshProcess> {
  const security = meshSecurity(env, { allowDevKey: false, validate: false, process: name });
  const serverConfig = readServerConfig(env);
  const telemetry = createTelemetry(env);
  const module = await serviceModules[name](env, security);
  return serveMeshModules(serverConfig, security, telemetry, [module]);
}

/**
 * The gateway of the distributed mesh: authenticates, checks request rules, then forwards each RPC to
 * the process that owns its service, and proxies the plain-HTTP paths those processes serve.
 */
export async function startGateway(env: Env): Promise<MeshProcess> {
  const security = meshSecurity(env, { allowDevKey: false, process: "gateway" });
  const serverConfig = readServerConfig(env);
  const telemetry = createTelemetry(env);
  const upstreams = serviceProcesses.map((process) => {
    const url = requiredUrl(env, serviceUrlVariable[process]);
    return {
      process,
      url,
      services: serviceOwners[process] as readonly DescService[],
      transport: peerTransport(url, security.tracing.clientInterceptors),
      session: new UpstreamSession(url),
    };
  });
  const streamUpstream = upstreams.find(({ process }) => process === "stream");
  if (!streamUpstream) throw new Error("the mesh topology has no stream process");
  const subscribeUpstream = relayMethod(StreamService.method.subscribe, streamUpstream.session, "stream", serverConfig.readMaxBytes);
  return serveMeshProcess(serverConfig, security, telemetry, {
    // Subscribers of one stream at one position share one upstream call (it takes precedence over the relay).
    encodedStreams: [sharedSubscribe(subscribeUpstream, streamConfigFromEnv(env).subscriberMaxLagBytes, serverConfig.readMaxBytes)],
    // The gateway is the distributed mesh's front door, so it serves the web UI as the embedded one does.
    staticDir: builtWebUi(),
    // HTTP/1.1, gRPC-web, JSON and compressed calls go through the generic Connect forwarder...
    routes: (router) => {
      for (const { services, transport } of upstreams) {
        for (const service of services) router.service(service, forwardingImpl(service, transport));
      }
    },
    // ...and gRPC and binary Connect over HTTP/2 are relayed on the fast path, messages left encoded.
    relays: upstreams.flatMap(({ process, services, session }) =>
      services.flatMap((service) => relayService(service, session, process, serverConfig.readMaxBytes)),
    ),
    httpRoutes: upstreams.flatMap(({ process, url }) => [
      ...httpPathsOwned[process].flatMap((prefix) => [proxyRoute("GET", prefix, url), proxyRoute("HEAD", prefix, url)]),
      ...httpPostPathsOwned[process].map((prefix) => proxyRoute("POST", prefix, url)),
    ]),
    upgradeRoutes: upstreams.flatMap(({ process, url }) => upgradePathsOwned[process].map((prefix) => proxyUpgrade(prefix, url))),
    close: async () => {
      for (const { session } of upstreams) session.close();
    },
  });
}
