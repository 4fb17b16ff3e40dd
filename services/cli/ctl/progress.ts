import { SingleBar } from "cli-progress";
import { formatBytes } from "../../shared/format-bytes.js";
import { writeOut, type CliIo } from "./io.js";

/** Byte progress of a transfer; silent when stderr is not a terminal, so logs and pipes stay clean. */
export interface Progress {
  /** Sets the bytes done so far. */
  update(done: number): void;
  stop(): void;
}

/** The bar drawn on each terminal stream right now; notes go above it. */
const barsOnScreen = new WeakMap<NodeJS.WritableStream, SingleBar>();

export function byteProgress(io: CliIo, label: string, total: number, start = 0): Progress {
  if (!io.stderr.isTTY) return { update() {}, stop() {} };
  const bar = new SingleBar({
    stream: io.stderr,
    format: `${label} [{bar}] {percentage}% | {done}/{size} | {rate}/s | eta {eta_formatted}`,
    hideCursor: true,
    clearOnComplete: false,
    // Redrawn on every tick even when unchanged: a note written above it moves it down a line.
    forceRedraw: true,
  });
  const startedAt = Date.now();
  const payload = (done: number) => ({
    done: formatBytes(done),
    size: total > 0 ? formatBytes(total) : "?",
    rate: formatBytes(((done - start) * 1000) / Math.max(1, Date.now() - startedAt)),
  });
  bar.start(Math.max(total, 1), start, payload(start));
  barsOnScreen.set(io.stderr, bar);
  return {
    update: (done) => bar.update(done, payload(done)),
    stop: () => {
      if (barsOnScreen.get(io.stderr) !== bar) return;
      barsOnScreen.delete(io.stderr);
      bar.stop();
    },
  };
}

/**
 * Writes a line for the person at the terminal. With a progress bar on that line it clears the bar,
 * writes the text in its place and draws the bar again below, so the bar never swallows the text.
 */
export async function writeLine(stream: NodeJS.WritableStream, text: string): Promise<void> {
  const line = text.endsWith("\n") ? text : `${text}\n`;
  const bar = barsOnScreen.get(stream);
  if (!bar) return writeOut(stream, line);
  // The bar saved the cursor where it started and goes back there when it stops; saving it again
  // (ESC 7) on the line it now occupies keeps the bar from climbing back over the text.
  await writeOut(stream, `\r\x1b[2K${line}\x1b7`);
  bar.render();
}
