// Test support for mentatctl: an in-memory CliIo (CapturedIo) and a proxy that cuts connections (startCuttingProxy).
import { once } from "node:events";
import { createConnection, createServer, type Socket } from "node:net";
import { Writable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import type { CliIo } from "./io.js";

/** An in-memory CliIo for running mentatctl in-process: everything written is kept as bytes. */
export class CapturedIo implements CliIo {
  private readonly out: Buffer[] = [];
  private readonly err: Buffer[] = [];
  readonly stdout = collector(this.out);
  readonly stderr: Writable & { isTTY?: boolean };

  /** With `terminal`, stderr claims to be a TTY, as when a person runs the command. */
  constructor(
    readonly env: Readonly<Record<string, string | undefined>>,
    readonly cwd: string,
    terminal = false,
  ) {
    this.stderr = Object.assign(collector(this.err), terminal ? { isTTY: true, columns: 100 } : {});
  }

  get stdoutBytes(): Buffer {
    return Buffer.concat(this.out);
  }

  get stdoutText(): string {
    return this.stdoutBytes.toString("utf8");
  }

  get stderrText(): string {
    return Buffer.concat(this.err).toString("utf8");
  }
}

function collector(into: Buffer[]): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      into.push(Buffer.from(chunk));
      callback();
    },
  });
}

/** A loopback TCP proxy that can drop a connection mid-transfer, to prove that transfers resume. */
export interface CuttingProxy {
  /** Base URL that reaches the target through the proxy. */
  readonly url: string;
  /** Drops the connection that carries the `bytes`-th byte from now in `direction` (once). */
  cutAfter(bytes: number, direction: "upload" | "download"): void;
  /** Connections dropped so far. */
  readonly cuts: number;
  close(): Promise<void>;
}

export interface CuttingProxyOptions {
  /** Paces what the target sends, so a test can act while a transfer is under way. */
  readonly downloadBytesPerSecond?: number;
}

export async function startCuttingProxy(target: string, options: CuttingProxyOptions = {}): Promise<CuttingProxy> {
  const { hostname, port } = new URL(target);
  let armed: { remaining: number; direction: "upload" | "download" } | undefined;
  let cuts = 0;
  const sockets = new Set<Socket>();

  const relay = (from: Socket, to: Socket, direction: "upload" | "download", pair: Socket[]) => {
    from.on("data", (chunk: Buffer) => {
      if (armed?.direction === direction) {
        armed.remaining -= chunk.byteLength;
        if (armed.remaining <= 0) {
          armed = undefined;
          cuts++;
          for (const socket of pair) socket.destroy();
          return;
        }
      }
      const rate = direction === "download" ? options.downloadBytesPerSecond : undefined;
      const waits: Promise<unknown>[] = [];
      if (!to.write(chunk)) waits.push(once(to, "drain"));
      if (rate !== undefined) waits.push(sleep((chunk.byteLength * 1000) / rate));
      if (waits.length > 0) {
        from.pause();
        void Promise.all(waits).then(
          () => from.resume(),
          () => from.destroy(),
        );
      }
    });
    from.on("end", () => to.end());
    from.on("error", () => to.destroy());
    from.on("close", () => to.destroy());
  };

  const server = createServer((client) => {
    const upstream = createConnection({ host: hostname, port: Number(port) });
    const pair = [client, upstream];
    for (const socket of pair) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
    }
    relay(client, upstream, "upload", pair);
    relay(upstream, client, "download", pair);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("proxy has no TCP address");
  return {
    url: `http://127.0.0.1:${address.port}`,
    cutAfter(bytes, direction) {
      armed = { remaining: bytes, direction };
    },
    get cuts() {
      return cuts;
    },
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
