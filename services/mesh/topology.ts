import type { DescService } from "@bufbuild/protobuf";
import { OrchestratorService } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { AgentRegistryService } from "../../gen/mentatlab/v1/registry_pb.js";
import { StorageService } from "../../gen/mentatlab/v1/storage_pb.js";
import { StreamService } from "../../gen/mentatlab/v1/stream_pb.js";

/** The processes of the distributed mesh, besides the gateway, and the services each one owns. */
export const serviceOwners = {
  storage: [StorageService],
  stream: [StreamService],
  orchestrator: [AgentRegistryService, OrchestratorService],
} as const satisfies Record<string, readonly DescService[]>;

export type ServiceProcess = keyof typeof serviceOwners;

export const serviceProcesses = Object.keys(serviceOwners) as ServiceProcess[];

/** Environment variable holding the URL of each process, for the gateway and for peers. */
export const serviceUrlVariable: Record<ServiceProcess, string> = {
  storage: "MENTATLAB_STORAGE_URL",
  stream: "MENTATLAB_STREAM_URL",
  orchestrator: "MENTATLAB_ORCHESTRATOR_URL",
};

/** Plain-HTTP paths each process serves, which the gateway proxies. */
export const httpPathsOwned: Record<ServiceProcess, readonly string[]> = {
  storage: ["/media/"],
  stream: ["/streams/"],
  orchestrator: [],
};

/** Services whose messages are media bytes: compressing them costs far more than it saves. */
export const mediaServices = [StorageService.typeName, StreamService.typeName, "mentatlab.v1.SidecarService"];

/** Plain-HTTP POST paths each process serves (`POST /streams/init`, `/streams/{id}/ticket`), which the gateway proxies. */
export const httpPostPathsOwned: Record<ServiceProcess, readonly string[]> = {
  storage: [],
  stream: ["/streams/"],
  orchestrator: [],
};

/** WebSocket paths each process serves, whose upgrades the gateway passes through. */
export const upgradePathsOwned: Record<ServiceProcess, readonly string[]> = {
  storage: [],
  stream: ["/streams/"],
  orchestrator: [],
};
