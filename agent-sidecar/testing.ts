import type { ServiceImpl } from "@connectrpc/connect";
import type { AgentEvent } from "../gen/mentatlab/v1/common_pb.js";
import { OrchestratorService } from "../gen/mentatlab/v1/orchestrator_pb.js";
import { AgentRegistryService } from "../gen/mentatlab/v1/registry_pb.js";
import { StorageService } from "../gen/mentatlab/v1/storage_pb.js";
import { StreamService } from "../gen/mentatlab/v1/stream_pb.js";
import { meshSecurity } from "../services/mesh/security.js";
import { mediaServices } from "../services/mesh/topology.js";
import { parseManifestText } from "../services/registry/manifest-parse.js";
import { MemoryAgentStore } from "../services/registry/memory-agent-store.js";
import { createRegistryService } from "../services/registry/registry-service.js";
import { startServer, type RunningServer } from "../services/server/server.js";
import { createStorage, storageConfigFromEnv } from "../services/storage/index.js";
import { createStreams, streamConfigFromEnv } from "../services/stream/index.js";

/** A gateway serving the real storage, stream and registry services, which tests can kill and restart. */
export interface DataPlane {
  readonly url: string;
  /** Mints a run token for a node of a run, as the orchestrator does. */
  runToken(runId: string, nodeId: string, user?: string, workspace?: string): string;
  /** Events sidecars reported through ReportNodeEvents, in arrival order. */
  readonly reported: AgentEvent[];
  /** Registers an agent manifest (YAML), as an admin would. */
  registerManifest(text: string): Promise<void>;
  /** Makes ReportNodeEvents answer `cancelled` for the run. */
  cancel(runId: string): void;
  /** Drops every connection at once (no grace), as a crashed gateway would, and stops listening. */
  kill(): Promise<void>;
  /** Listens again on the same port; the services' state survives, as it does in Redis. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The orchestrator's part a sidecar talks to: ReportNodeEvents, recording what arrives. A stand-in so
 * the sidecar can be tested before and apart from the run scheduler; the end-to-end tests use the real one.
 */
function reportRecorder(reported: AgentEvent[], cancelled: ReadonlySet<string>): Partial<ServiceImpl<typeof OrchestratorService>> {
  return {
    reportNodeEvents(request) {
      reported.push(...request.events);
      return { cancelled: cancelled.has(request.runId) };
    },
  };
}

/**
 * `overrides` adds to or replaces the services' settings, e.g. `STREAM_BITRATE_WINDOW_MS`; `orchestrator`
 * serves a real OrchestratorService (a TestOrchestrator's) instead of the recording stand-in, and
 * `reported` then stays empty.
 */
export async function startDataPlane(
  dataDir: string,
  overrides: Readonly<Record<string, string>> = {},
  orchestrator?: ServiceImpl<typeof OrchestratorService>,
): Promise<DataPlane> {
  const env = {
    MENTATLAB_DATA_DIR: dataDir,
    MENTATLAB_TOKEN_SECRET: "test-token-secret-0123456789",
    MENTATLAB_PRESIGN_SECRET: "test-presign-secret-0123456789",
    MENTATLAB_API_KEYS: "",
    ...overrides,
  };
  const security = meshSecurity(env, { allowDevKey: false });
  const storage = await createStorage(storageConfigFromEnv(env, dataDir));
  const streams = await createStreams(streamConfigFromEnv(env));
  const agents = new MemoryAgentStore();
  const reported: AgentEvent[] = [];
  const cancelled = new Set<string>();
  const listen = (port: number) =>
    startServer({
      port,
      routes: (router) => {
        router.service(StorageService, storage.impl);
        router.service(StreamService, streams.impl);
        router.service(AgentRegistryService, createRegistryService(agents));
        router.service(OrchestratorService, orchestrator ?? reportRecorder(reported, cancelled));
      },
      interceptors: security.interceptors,
      uncompressedServices: mediaServices,
      shutdownGraceMs: 0,
    });
  let server: RunningServer | undefined = await listen(0);
  const port = server.port;
  return {
    url: server.url,
    reported,
    runToken: (runId, nodeId, user = "alice", workspace = "ws-test") => security.runTokens.mint({ runId, nodeId, attempt: 1, user, workspace }, 3600),
    async registerManifest(text) {
      const { manifest, violations } = parseManifestText(text);
      if (!manifest || !violations.empty) throw new Error(`not a valid manifest: ${JSON.stringify(violations.list)}`);
      await agents.put(manifest);
    },
    cancel(runId) {
      cancelled.add(runId);
    },
    async kill() {
      await server?.close();
      server = undefined;
    },
    async restart() {
      server = await listen(port);
    },
    async stop() {
      await server?.close();
      await streams.close();
      await storage.close();
    },
  };
}
