import { type ClientHttp2Session, type ClientHttp2Stream, connect, type OutgoingHttpHeaders } from "node:http2";

// Node's 64 KiB default stream window stalls a relay on every large event (docs/wire-speed.md); 1 MiB keeps
// it flowing while still bounding what one slow subscriber can make the gateway hold.
const streamWindowBytes = 1024 * 1024;
const connectionWindowBytes = 32 * 1024 * 1024;

/**
 * One shared HTTP/2 (h2c) connection to an upstream process, opened on first use and again after it
 * is lost, so relayed calls are multiplexed instead of each paying for a connection.
 */
export class UpstreamSession {
  private session: ClientHttp2Session | undefined;

  constructor(private readonly baseUrl: string) {}

  /** The live connection, opened if there is none. */
  get(): ClientHttp2Session {
    if (!this.session || this.session.closed || this.session.destroyed) {
      const session = connect(this.baseUrl, { settings: { initialWindowSize: streamWindowBytes } });
      session.once("connect", () => session.setLocalWindowSize(connectionWindowBytes));
      // Failures surface on each call's stream; an unhandled session 'error' would crash the process.
      session.on("error", () => undefined);
      session.unref();
      this.session = session;
    }
    return this.session;
  }

  /** Starts one call on the connection; its body is for the caller to write and end. */
  request(headers: OutgoingHttpHeaders): ClientHttp2Stream {
    return this.get().request(headers, { endStream: false });
  }

  close(): void {
    this.session?.destroy();
    this.session = undefined;
  }
}
