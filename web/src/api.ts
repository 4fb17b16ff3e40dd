import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { OrchestratorService } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { AgentRegistryService } from "../../gen/mentatlab/v1/registry_pb.js";
import { StorageService } from "../../gen/mentatlab/v1/storage_pb.js";
import { StreamService } from "../../gen/mentatlab/v1/stream_pb.js";

/** Clients for every public service, on the origin the page came from, carrying the API key. */
export interface Api {
  readonly storage: Client<typeof StorageService>;
  readonly registry: Client<typeof AgentRegistryService>;
  readonly orchestrator: Client<typeof OrchestratorService>;
  readonly stream: Client<typeof StreamService>;
}

export function createApi(apiKey: string, baseUrl: string = location.origin): Api {
  const bearer: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${apiKey}`);
    return next(req);
  };
  // Binary keeps media chunks compact; browsers speak the Connect protocol over fetch, streaming included.
  const transport = createConnectTransport({ baseUrl, interceptors: [bearer], useBinaryFormat: true });
  return {
    storage: createClient(StorageService, transport),
    registry: createClient(AgentRegistryService, transport),
    orchestrator: createClient(OrchestratorService, transport),
    stream: createClient(StreamService, transport),
  };
}
