import { Agent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { OrchestratorService } from "../../../gen/mentatlab/v1/orchestrator_pb.js";
import { AgentRegistryService } from "../../../gen/mentatlab/v1/registry_pb.js";
import { StorageService } from "../../../gen/mentatlab/v1/storage_pb.js";
import { StreamService } from "../../../gen/mentatlab/v1/stream_pb.js";
import type { CtlConfig } from "./config.js";

/** Typed clients for every public service, sharing one connection to the gateway. */
export interface Clients {
  readonly storage: Client<typeof StorageService>;
  readonly registry: Client<typeof AgentRegistryService>;
  readonly orchestrator: Client<typeof OrchestratorService>;
  readonly stream: Client<typeof StreamService>;
}

export interface Connection {
  readonly clients: Clients;
  /** Tears the connection down so an in-process caller (tests) leaves no socket open. */
  close(): void;
}

const MiB = 1024 * 1024;

// Media chunks are up to 4 MiB; the default 64 KiB HTTP/2 windows would stall every chunk.
const http2Settings = { initialWindowSize: 4 * MiB };

export function openConnection(config: Pick<CtlConfig, "url" | "apiKey" | "httpVersion">): Connection {
  const interceptors = config.apiKey === undefined ? [] : [bearer(config.apiKey)];
  // Media bytes do not compress; gzip would only burn CPU on both ends.
  const common = { baseUrl: config.url, interceptors, acceptCompression: [], useBinaryFormat: true };
  let transport: Transport;
  let close: () => void;
  if (config.httpVersion === "2") {
    const sessionManager = new Http2SessionManager(config.url, { idleConnectionTimeoutMs: 60_000 }, { settings: http2Settings });
    transport = createConnectTransport({ ...common, httpVersion: "2", sessionManager });
    close = () => sessionManager.abort();
  } else {
    const agent = config.url.startsWith("https:") ? new HttpsAgent({ keepAlive: true }) : new Agent({ keepAlive: true });
    transport = createConnectTransport({ ...common, httpVersion: "1.1", nodeOptions: { agent } });
    close = () => agent.destroy();
  }
  return {
    clients: {
      storage: createClient(StorageService, transport),
      registry: createClient(AgentRegistryService, transport),
      orchestrator: createClient(OrchestratorService, transport),
      stream: createClient(StreamService, transport),
    },
    close,
  };
}

function bearer(key: string): Interceptor {
  return (next) => (req) => {
    req.header.set("authorization", `Bearer ${key}`);
    return next(req);
  };
}
