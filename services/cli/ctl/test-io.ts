import { Writable } from "node:stream";
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
