import { connect } from "node:net";
import type { Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

/** Where and how to reach the pod-local sidecar. */
export interface SidecarAddress {
  /** Unix socket path, or `127.0.0.1:<port>`. */
  readonly address: string;
  /** The per-pod token from `MENTATLAB_SIDECAR_TOKEN`. */
  readonly token: string;
}

/** Reads the sidecar's address and token from the environment the sidecar started the agent with. */
export function sidecarAddressFromEnv(env: Readonly<Record<string, string | undefined>> = process.env): SidecarAddress {
  const address = env.MENTATLAB_SIDECAR_ADDRESS;
  const token = env.MENTATLAB_SIDECAR_TOKEN;
  if (!address || !token) {
    throw new Error("MENTATLAB_SIDECAR_ADDRESS and MENTATLAB_SIDECAR_TOKEN must be set: run the agent under agent-sidecar");
  }
  return { address, token };
}

const maxMessageBytes = 8 * 1024 * 1024;

/** gRPC over HTTP/2 to the sidecar, on its unix socket or loopback port, with the pod token. */
export function createSidecarTransport({ address, token }: SidecarAddress): Transport {
  const tcp = /^(127\.0\.0\.1|localhost):\d+$/.test(address);
  return createGrpcTransport({
    baseUrl: tcp ? `http://${address}` : "http://localhost",
    ...(tcp ? {} : { nodeOptions: { createConnection: () => connect(address) } }),
    acceptCompression: [],
    readMaxBytes: maxMessageBytes,
    writeMaxBytes: maxMessageBytes,
    interceptors: [
      (next) => (req) => {
        req.header.set("authorization", `Bearer ${token}`);
        return next(req);
      },
    ],
  });
}
