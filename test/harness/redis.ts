import { connect } from "node:net";
import { freePort, LOOPBACK } from "./ports.js";
import { makeTempDir, type ManagedProcess, removeTempDir, spawnManaged, waitUntilReady } from "./process.js";
import { requireTool } from "./require.js";

export interface StartRedisOptions {
  /** Append-only file on, so data survives `restart()` and `kill()` + `start()`. Default false. */
  persistence?: boolean;
  /**
   * When Redis fsyncs the append-only file: Redis' default `everysec` can lose acknowledged writes
   * even to a `kill()` when the disk is slow; `always` fsyncs before replying.
   */
  appendfsync?: "always" | "everysec" | "no";
}

export interface RedisServer {
  /** `redis://127.0.0.1:PORT` */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** The working directory (AOF files live here); kept across restarts, removed by `stop()`. */
  readonly dir: string;
  readonly running: boolean;
  /** Starts the server again on the same port and dir after `shutdown()` or `kill()`. */
  start(): Promise<void>;
  /** Graceful SIGTERM (Redis flushes the AOF); keeps the dir so `start()` can follow. */
  shutdown(): Promise<void>;
  /** SIGKILL, like a crash; keeps the dir so `start()` can follow. */
  kill(): Promise<void>;
  /** `shutdown()` then `start()` on the same port and dir. */
  restart(): Promise<void>;
  /** SIGSTOP: the server keeps its connections open but answers nothing, like a hung host. */
  freeze(): void;
  /** SIGCONT after `freeze()`. */
  thaw(): void;
  /** Final teardown: stops the process and deletes the dir. Idempotent. */
  stop(): Promise<void>;
}

const INSTALL_HINT = "apt-get install -y redis-server";

/** One inline PING; `-LOADING` while the AOF replays counts as not ready. */
export function pingRedis(port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: LOOPBACK, port });
    let reply = "";
    const finish = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once("error", () => finish(false));
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.on("data", (chunk) => {
      reply += chunk.toString("latin1");
      if (reply.includes("\r\n")) finish(reply.startsWith("+PONG"));
    });
  });
}

function redisArgs(port: number, dir: string, persistence: boolean, appendfsync: string): string[] {
  return [
    "--port",
    String(port),
    "--bind",
    LOOPBACK,
    "--dir",
    dir,
    "--daemonize",
    "no",
    // Logs go to stdout, which the harness keeps for error messages.
    "--logfile",
    "",
    "--save",
    "",
    "--appendonly",
    persistence ? "yes" : "no",
    "--appendfsync",
    appendfsync,
  ];
}

const ADDRESS_IN_USE = /Address already in use/i;

export async function startRedis(opts: StartRedisOptions = {}): Promise<RedisServer> {
  const binary = requireTool("redis-server", INSTALL_HINT);
  const persistence = opts.persistence ?? false;
  const appendfsync = opts.appendfsync ?? "everysec";
  const dir = makeTempDir("redis");
  let proc: ManagedProcess | undefined;
  let stopped = false;

  async function launch(port: number): Promise<ManagedProcess> {
    const p = spawnManaged(binary, redisArgs(port, dir, persistence, appendfsync), { cwd: dir });
    // A short ping timeout: a live redis answers at once (even `-LOADING`), and a stranger that
    // holds the port and stays silent must not stretch each attempt.
    await waitUntilReady(`redis-server on ${LOOPBACK}:${port}`, p, () => pingRedis(port, 250));
    return p;
  }

  // The free port is released before redis binds it, so another process can win the race.
  let port = 0;
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      proc = await launch(port);
      break;
    } catch (err) {
      if (attempt >= 5 || !ADDRESS_IN_USE.test(String(err))) {
        removeTempDir(dir);
        throw err;
      }
    }
  }

  const server: RedisServer = {
    url: `redis://${LOOPBACK}:${port}`,
    host: LOOPBACK,
    port,
    dir,
    get running() {
      return proc?.running ?? false;
    },
    async start() {
      if (stopped) throw new Error("redis harness: start() after stop(); start a new server instead");
      if (proc?.running) return;
      // The same port must come back for clients to reconnect; if something grabbed it
      // meanwhile, waiting briefly is all we can do.
      const deadline = Date.now() + 5_000;
      for (;;) {
        try {
          proc = await launch(port);
          return;
        } catch (err) {
          if (Date.now() > deadline || !ADDRESS_IN_USE.test(String(err))) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    },
    async shutdown() {
      await proc?.terminate("SIGTERM");
    },
    async kill() {
      await proc?.terminate("SIGKILL");
    },
    async restart() {
      await server.shutdown();
      await server.start();
    },
    freeze() {
      proc?.child.kill("SIGSTOP");
    },
    thaw() {
      proc?.child.kill("SIGCONT");
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await proc?.terminate("SIGTERM");
      removeTempDir(dir);
    },
  };
  return server;
}
