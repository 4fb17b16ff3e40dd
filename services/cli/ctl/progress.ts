import { SingleBar } from "cli-progress";
import { formatBytes } from "../../shared/format-bytes.js";
import type { CliIo } from "./io.js";

/** Byte progress of a transfer; silent when stderr is not a terminal, so logs and pipes stay clean. */
export interface Progress {
  /** Sets the bytes done so far. */
  update(done: number): void;
  stop(): void;
}

export function byteProgress(io: CliIo, label: string, total: number, start = 0): Progress {
  if (!io.stderr.isTTY) return { update() {}, stop() {} };
  const bar = new SingleBar({
    stream: io.stderr,
    format: `${label} [{bar}] {percentage}% | {done}/{size} | {rate}/s | eta {eta_formatted}`,
    hideCursor: true,
    clearOnComplete: false,
  });
  const startedAt = Date.now();
  const payload = (done: number) => ({
    done: formatBytes(done),
    size: total > 0 ? formatBytes(total) : "?",
    rate: formatBytes(((done - start) * 1000) / Math.max(1, Date.now() - startedAt)),
  });
  bar.start(Math.max(total, 1), start, payload(start));
  return {
    update: (done) => bar.update(done, payload(done)),
    stop: () => bar.stop(),
  };
}
