import type { ConnectRouter } from "@connectrpc/connect";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ServerConfig } from "../server/config.js";
import type { EncodedRelay, EncodedServerStream } from "../server/fast-path/index.js";
import type { MeshModule } from "../server/mesh-module.js";
import { createFetchServer, type FetchServer } from "../server/fetch-server.js";
import { startServer, type RunningServer, type ServerOptions } from "../server/server.js";
import type { HttpRoute } from "../shared/http-route.js";
import type { UpgradeRoute } from "../shared/upgrade-route.js";
import type { Telemetry } from "../shared/telemetry/index.js";
import type { MeshSecurity } from "./security.js";
import { mediaServices } from "./topology.js";

const webDist = fileURLToPath(new URL("../../web/dist", import.meta.url));

/** The web UI `npm start` builds into web/dist, when it has been built. */
export function builtWebUi(): string | undefined {
  return existsSync(join(webDist, "index.html")) ? webDist : undefined;
}

/** One running process of the mesh, embedded or distributed. */
export interface MeshProcess {
  readonly url: string;
  readonly server: RunningServer;
  close(): Promise<void>;
}

/** What a process serves: its RPCs, its plain-HTTP paths, and how to stop what backs them. */
export interface MeshApp {
  readonly routes: (router: ConnectRouter) => void;
  readonly httpRoutes: readonly HttpRoute[];
  /** HTTP/1.1 `Upgrade` endpoints (WebSocket), authenticated like `httpRoutes`. */
  readonly upgradeRoutes?: readonly UpgradeRoute[];
  /** Files served at `/` (the web UI) unless `MENTATLAB_WEB_DIR` names others. */
  readonly staticDir?: string | undefined;
  /** Server streams the app also serves pre-encoded (see `ServerOptions.encodedStreams`). */
  readonly encodedStreams?: readonly EncodedServerStream[];
  /** Procedures the app relays still encoded (see `ServerOptions.relays`). */
  readonly relays?: readonly EncodedRelay[];
  close(): Promise<void>;
}

/**
 * The server options every mesh process serves `app` with: the same security at the edge, bearer
 * keys for the plain-HTTP paths, no compression on media services, metrics beside the app's own paths.
 */
function meshServerOptions(config: ServerConfig, security: MeshSecurity, telemetry: Telemetry, app: MeshApp): ServerOptions {
  return {
    ...config,
    routes: app.routes,
    interceptors: security.interceptors,
    httpRoutes: [...app.httpRoutes, ...telemetry.routes],
    upgradeRoutes: app.upgradeRoutes ?? [],
    authenticateHttp: async (request) => security.authenticator.authenticate(request.headers.get("authorization")),
    uncompressedServices: mediaServices,
    staticDir: config.staticDir ?? app.staticDir,
    encodedStreams: app.encodedStreams ?? [],
    relays: app.relays ?? [],
  };
}

/** Stops what backs a process once nothing reaches it any more: the app, then telemetry and tracing. */
function backendCloser(security: MeshSecurity, telemetry: Telemetry, app: MeshApp): () => Promise<void> {
  return async () => {
    await app.close();
    await telemetry.shutdown();
    await security.tracing.shutdown();
  };
}

/**
 * Serves `app` the way every mesh process does (see `meshServerOptions`). Closing stops the listener
 * first, so no call reaches a backend that is shutting down.
 */
export async function serveMeshProcess(config: ServerConfig, security: MeshSecurity, telemetry: Telemetry, app: MeshApp): Promise<MeshProcess> {
  const closeBackends = backendCloser(security, telemetry, app);
  let server: RunningServer;
  try {
    server = await startServer(meshServerOptions(config, security, telemetry, app));
  } catch (error) {
    // A port already taken must not leave the backends (agent processes, Redis clients, timers) running.
    await closeBackends();
    throw error;
  }
  return {
    url: server.url,
    server,
    async close() {
      await server.close();
      await closeBackends();
    },
  };
}

/** A mesh process's routes as one Fetch-API handler (Bun, Deno); its listener belongs to the caller. */
export interface FetchMeshProcess {
  readonly server: FetchServer;
  /** Stops the backends; call it once the listener has stopped. */
  closeBackends(): Promise<void>;
}

/** Serves `app` as `serveMeshProcess` does, on a Fetch-API runtime's listener instead of Node's. */
export function fetchMeshProcess(config: ServerConfig, security: MeshSecurity, telemetry: Telemetry, app: MeshApp): FetchMeshProcess {
  return { server: createFetchServer(meshServerOptions(config, security, telemetry, app)), closeBackends: backendCloser(security, telemetry, app) };
}

/** Service modules side by side as one app, closed in the reverse of the order given. */
export function meshAppOf(telemetry: Telemetry, modules: readonly MeshModule[], options: { readonly staticDir?: string | undefined } = {}): MeshApp {
  for (const module of modules) module.registerMetrics(telemetry.meter);
  return {
    routes: (router) => {
      for (const module of modules) module.mount(router);
    },
    httpRoutes: modules.flatMap((module) => module.httpRoutes),
    upgradeRoutes: modules.flatMap((module) => module.upgradeRoutes ?? []),
    encodedStreams: modules.flatMap((module) => module.encodedStreams),
    staticDir: options.staticDir,
    async close() {
      for (const module of [...modules].reverse()) await module.close();
    },
  };
}

/**
 * Serves service modules side by side on one port: each mounted, its metrics bound once, closed in
 * the reverse of the order given, so a module closes before the ones it calls (list them callees first).
 */
export function serveMeshModules(
  config: ServerConfig,
  security: MeshSecurity,
  telemetry: Telemetry,
  modules: readonly MeshModule[],
  options: { readonly staticDir?: string | undefined } = {},
): Promise<MeshProcess> {
  return serveMeshProcess(config, security, telemetry, meshAppOf(telemetry, modules, options));
}
