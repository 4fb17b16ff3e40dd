import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { OrchestratorService } from "../gen/mentatlab/v1/orchestrator_pb.js";
import { AgentRegistryService } from "../gen/mentatlab/v1/registry_pb.js";
import { StorageService } from "../gen/mentatlab/v1/storage_pb.js";
import { StreamService } from "../gen/mentatlab/v1/stream_pb.js";

/** The mesh services a sidecar calls, all through the gateway with the node's run token. */
export interface GatewayClients {
  readonly storage: Client<typeof StorageService>;
  readonly stream: Client<typeof StreamService>;
  readonly orchestrator: Client<typeof OrchestratorService>;
  readonly registry: Client<typeof AgentRegistryService>;
}

const maxMessageBytes = 8 * 1024 * 1024;

/**
 * A gRPC transport over HTTP/2 (Publish is bidirectional, so HTTP/1.1 will not do). Compression is off:
 * media chunks are incompressible and gzip cut throughput eightfold (docs/wire-speed.md).
 */
export function createGatewayTransport(gatewayUrl: string, runToken: string | (() => string)): Transport {
  // A warm worker keeps one connection for all its attempts, each call carrying the current attempt's token.
  const token = typeof runToken === "string" ? () => runToken : runToken;
  const bearer: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${token()}`);
    return next(req);
  };
  return createGrpcTransport({
    baseUrl: gatewayUrl,
    interceptors: [bearer],
    acceptCompression: [],
    readMaxBytes: maxMessageBytes,
    writeMaxBytes: maxMessageBytes,
    // A dead gateway must be noticed quickly so the relay can reconnect, not hang on a half-open socket.
    pingIntervalMs: 5_000,
    pingTimeoutMs: 5_000,
    idleConnectionTimeoutMs: 30_000,
  });
}

export function createGatewayClients(transport: Transport): GatewayClients {
  return {
    storage: createClient(StorageService, transport),
    stream: createClient(StreamService, transport),
    orchestrator: createClient(OrchestratorService, transport),
    registry: createClient(AgentRegistryService, transport),
  };
}
