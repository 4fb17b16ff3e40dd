import { OrchestratorService } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { AgentRegistryService } from "../../gen/mentatlab/v1/registry_pb.js";
import type { MeshModule } from "../server/mesh-module.js";
import type { OrchestratorConfig } from "./config.js";
import { createOrchestrator, type OrchestratorDeps } from "./index.js";
import { registerOrchestratorMetrics } from "./metrics-instruments.js";

/** The orchestrator process as a mesh serves it: OrchestratorService and the AgentRegistryService it owns. */
export async function orchestratorModule(config: OrchestratorConfig, deps: OrchestratorDeps): Promise<MeshModule> {
  const orchestrator = await createOrchestrator(config, deps);
  return {
    mount: (router) => {
      router.service(AgentRegistryService, orchestrator.registryImpl);
      router.service(OrchestratorService, orchestrator.orchestratorImpl);
    },
    httpRoutes: [],
    encodedStreams: [],
    registerMetrics: (meter) => registerOrchestratorMetrics(meter, orchestrator.metrics),
    close: () => orchestrator.close(),
  };
}
