import { mkdirSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { makeTempDir, removeTempDir, spawnManaged, waitUntilReady } from "./process.js";
import { requireTool } from "./require.js";

// Assembled at runtime so that scanners on developer machines do not quarantine this source file.
export const EICAR: string = ["X5O!P%@AP[4\\PZX54(P^)7CC)7}$", "EICAR-STANDARD-ANTIVIRUS", "-TEST-FILE!$H+H*"].join("");

/** clamd reports signatures from a non-official database with a `.UNOFFICIAL` suffix. */
export const EICAR_SIGNATURE_NAME = "Eicar-Test-Signature.Custom.NDB";

export interface StartClamdOptions {
  /** clamd's StreamMaxLength (e.g. "64M", "1M"); larger INSTREAM uploads are cut off. Default "64M". */
  streamMaxLength?: string;
}

export interface ClamdServer {
  readonly socketPath: string;
  readonly streamMaxLength: string;
  stop(): Promise<void>;
}

const INSTALL_HINT = "apt-get install -y clamav-daemon";

/** Sends one null-terminated `z` command and returns the reply without its terminator. */
export function clamdCommand(socketPath: string, command: string, timeoutMs = 2_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ path: socketPath });
    const chunks: Buffer[] = [];
    socket.setTimeout(timeoutMs, () => {
      socket.destroy();
      reject(new Error(`clamd ${command}: no reply within ${timeoutMs} ms`));
    });
    socket.once("error", reject);
    socket.once("connect", () => socket.write(`z${command}\0`));
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      const all = Buffer.concat(chunks);
      const end = all.indexOf(0);
      if (end !== -1) {
        socket.destroy();
        resolve(all.subarray(0, end).toString("utf8"));
      }
    });
    socket.once("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
  });
}

/**
 * Starts Debian's clamd in the foreground with a database holding only an EICAR signature: no
 * downloaded signatures exist here, and clamd refuses to start with an empty database.
 */
export async function startClamd(opts: StartClamdOptions = {}): Promise<ClamdServer> {
  const binary = requireTool("clamd", INSTALL_HINT);
  const streamMaxLength = opts.streamMaxLength ?? "64M";
  const dir = makeTempDir("clamd");
  const dbDir = join(dir, "db");
  const tmpDir = join(dir, "tmp");
  mkdirSync(dbDir);
  mkdirSync(tmpDir);
  const marker = Buffer.from("EICAR-STANDARD-ANTIVIRUS-TEST-FILE", "latin1").toString("hex");
  writeFileSync(join(dbDir, "custom.ndb"), `${EICAR_SIGNATURE_NAME}:0:*:${marker}\n`);
  const socketPath = join(dir, "clamd.sock");
  const configPath = join(dir, "clamd.conf");
  writeFileSync(
    configPath,
    [
      "Foreground yes",
      `LocalSocket ${socketPath}`,
      "LocalSocketMode 600",
      `DatabaseDirectory ${dbDir}`,
      `TemporaryDirectory ${tmpDir}`,
      `StreamMaxLength ${streamMaxLength}`,
      // The database never changes during a test run; re-checking it only costs wakeups.
      "SelfCheck 0",
      "",
    ].join("\n"),
  );

  const proc = spawnManaged(binary, [`--config-file=${configPath}`], { cwd: dir });
  try {
    await waitUntilReady("clamd", proc, async () => {
      try {
        return (await clamdCommand(socketPath, "PING", 1_000)) === "PONG";
      } catch {
        return false;
      }
    });
  } catch (err) {
    removeTempDir(dir);
    throw err;
  }

  let stopped = false;
  return {
    socketPath,
    streamMaxLength,
    async stop() {
      if (stopped) return;
      stopped = true;
      await proc.terminate("SIGTERM", 5_000);
      removeTempDir(dir);
    },
  };
}
