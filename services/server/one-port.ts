import type { Server as Http1Server } from "node:http";
import type { Http2Server, ServerHttp2Session } from "node:http2";
import { createServer, type Server as NetServer, type Socket } from "node:net";

/** The first bytes an HTTP/2 client with prior knowledge sends (RFC 9113 §3.4). */
const http2Preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** One TCP listener that hands each connection to the HTTP/2 or the HTTP/1.1 server. */
export interface OnePortListener {
  readonly port: number;
  /** Stops accepting connections; open ones stay. */
  stopAccepting(): Promise<void>;
  /** Asks every connection to finish its in-flight requests and then close (GOAWAY / no keep-alive). */
  closeGracefully(): void;
  /** Resolves true once every connection has closed, or false when `ms` passes first. */
  waitForConnections(ms: number): Promise<boolean>;
  /** Tears down every connection at once. */
  destroyAll(): void;
}

/**
 * Listens on `host:port` and sniffs each connection: the HTTP/2 preface goes to `http2` (h2c with
 * prior knowledge), anything else to `http1`. Node's own `allowHTTP1` only works with TLS.
 */
export function listenOnePort(host: string, port: number, http1: Http1Server, http2: Http2Server): Promise<OnePortListener> {
  const sockets = new Set<Socket>();
  const sessions = new Set<ServerHttp2Session>();
  let closing = false;
  let allClosed: (() => void) | undefined;
  const toHttp2 = (socket: Socket) => {
    // Node ends the socket when an HTTP/2 session is over but then waits for the peer's FIN; a
    // client that never sends it would hold the connection, and graceful shutdown, open.
    socket.once("finish", () => socket.destroy());
    http2.emit("connection", socket);
  };

  http2.on("session", (session: ServerHttp2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
    if (closing) session.close();
  });
  // During shutdown, a keep-alive connection becomes idle after its last response: close it then.
  http1.on("request", (_req, res) => {
    if (closing) res.shouldKeepAlive = false;
    res.once("finish", () => {
      if (closing) setImmediate(() => http1.closeIdleConnections());
    });
  });

  // The http1 server never listens itself; its connection tracking (idle-connection closing,
  // header and request timeouts) starts on "listening", so announce it.
  http1.emit("listening");

  const server: NetServer = createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once("close", () => {
      sockets.delete(socket);
      if (sockets.size === 0) allClosed?.();
    });
    handOver(socket, http1, toHttp2);
  });

  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port }, () => {
      server.off("error", reject);
      const address = server.address();
      if (address === null || typeof address === "string") {
        reject(new Error("listener has no TCP address"));
        return;
      }
      resolve({
        port: address.port,
        stopAccepting: () => new Promise((done) => server.close(() => done())),
        closeGracefully() {
          closing = true;
          for (const session of sessions) session.close();
          // Closes idle keep-alive connections and stops the timeout checks; busy ones stay.
          http1.close();
        },
        waitForConnections(ms) {
          if (sockets.size === 0) return Promise.resolve(true);
          return new Promise((done) => {
            const timer = setTimeout(() => done(false), ms);
            allClosed = () => {
              clearTimeout(timer);
              done(true);
            };
          });
        },
        destroyAll() {
          for (const session of sessions) session.destroy();
          for (const socket of sockets) socket.destroy();
        },
      });
    });
  });
}

/** A connection that sends nothing for this long is dropped before any server sees it. */
const firstBytesTimeoutMs = 30_000;

/** Reads just enough bytes to tell HTTP/2 from HTTP/1, puts them back, and dispatches. */
function handOver(socket: Socket, http1: Http1Server, toHttp2: (socket: Socket) => void): void {
  let head = Buffer.alloc(0);
  const ignoreEarlyErrors = () => {};
  socket.on("error", ignoreEarlyErrors);
  socket.setTimeout(firstBytesTimeoutMs, () => socket.destroy());
  const onData = (chunk: Buffer) => {
    head = Buffer.concat([head, chunk]);
    const compared = Math.min(head.length, http2Preface.length);
    const isPrefix = head.subarray(0, compared).equals(http2Preface.subarray(0, compared));
    if (isPrefix && head.length < http2Preface.length) return;
    socket.off("data", onData);
    socket.off("error", ignoreEarlyErrors);
    socket.setTimeout(0);
    socket.pause();
    socket.unshift(head);
    if (isPrefix) {
      // The http2 server reads the socket itself; resuming here would lose the preface.
      toHttp2(socket);
    } else {
      http1.emit("connection", socket);
      socket.resume();
    }
  };
  socket.on("data", onData);
}
