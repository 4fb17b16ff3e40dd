import { rm } from "node:fs/promises";
import { createServer, type Http2Session } from "node:http2";
import type { AddressInfo } from "node:net";
import { Code, ConnectError, type ConnectRouter, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";

export interface ListeningServer {
  /** What the agent dials: a unix socket path, or `127.0.0.1:<port>`. */
  readonly address: string;
  close(): Promise<void>;
}

const maxMessageBytes = 8 * 1024 * 1024;

/**
 * Connect answers unexpected exceptions with a bare "internal error". The only caller here is the pod's
 * own agent, so it gets the real message: what failed while storing or relaying its output.
 */
const explainFailures: Interceptor = (next) => async (req) => {
  try {
    return await next(req);
  } catch (error) {
    if (error instanceof ConnectError) throw error;
    throw new ConnectError(error instanceof Error ? error.message : String(error), Code.Internal, undefined, undefined, error);
  }
};

/** Parses `127.0.0.1:<port>` / `localhost:<port>`; anything else is a unix socket path. */
export function parseListen(listen: string): { host: string; port: number } | { path: string } {
  const match = /^(127\.0\.0\.1|localhost|\[::1\]):(\d+)$/.exec(listen);
  if (!match) return { path: listen };
  return { host: match[1] === "[::1]" ? "::1" : "127.0.0.1", port: Number(match[2]) };
}

/**
 * Serves Connect routes over cleartext HTTP/2 on a unix socket or a loopback port: the agent is in the
 * same pod, so nothing is ever bound beyond loopback.
 */
export async function listenHttp2(listen: string, routes: (router: ConnectRouter) => void, interceptors: Interceptor[]): Promise<ListeningServer> {
  const sessions = new Set<Http2Session>();
  const server = createServer(
    connectNodeAdapter({
      routes,
      interceptors: [explainFailures, ...interceptors],
      acceptCompression: [],
      readMaxBytes: maxMessageBytes,
      writeMaxBytes: maxMessageBytes,
    }),
  );
  server.on("session", (session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
  });
  const target = parseListen(listen);
  if ("path" in target) await rm(target.path, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    if ("path" in target) server.listen(target.path, resolve);
    else server.listen(target.port, target.host, resolve);
  });
  const address = "path" in target ? target.path : `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    address,
    async close() {
      // http2 server.close() waits for every client session, so end them ourselves.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const session of sessions) session.close();
      await closed;
      if ("path" in target) await rm(target.path, { force: true });
    },
  };
}
