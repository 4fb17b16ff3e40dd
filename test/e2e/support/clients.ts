import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { OrchestratorService } from "../../../gen/mentatlab/v1/orchestrator_pb.js";
import { AgentRegistryService } from "../../../gen/mentatlab/v1/registry_pb.js";
import { StorageService } from "../../../gen/mentatlab/v1/storage_pb.js";
import { StreamService } from "../../../gen/mentatlab/v1/stream_pb.js";

/** What an end-to-end test talks to: a running mesh behind one gateway URL. */
export interface MeshUnderTest {
  readonly url: string;
  /** API key of a user who may upload, submit flows, register agents and watch results. */
  readonly apiKey: string;
  close(): Promise<void>;
}

/** The client side of the seed diagrams: generated Connect clients over gRPC with an API key. */
export interface MeshClients {
  readonly storage: Client<typeof StorageService>;
  readonly streams: Client<typeof StreamService>;
  readonly orchestrator: Client<typeof OrchestratorService>;
  readonly registry: Client<typeof AgentRegistryService>;
}

export function meshClients(mesh: Pick<MeshUnderTest, "url" | "apiKey">): MeshClients {
  const bearer: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${mesh.apiKey}`);
    return next(req);
  };
  const transport = createGrpcTransport({ baseUrl: mesh.url, interceptors: [bearer], acceptCompression: [] });
  return {
    storage: createClient(StorageService, transport),
    streams: createClient(StreamService, transport),
    orchestrator: createClient(OrchestratorService, transport),
    registry: createClient(AgentRegistryService, transport),
  };
}
