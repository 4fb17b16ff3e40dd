import type { RunningServer } from "./server.js";

/** Signals that ask the process to stop: `kill`/Kubernetes send SIGTERM, a terminal SIGINT. */
const stopSignals = ["SIGTERM", "SIGINT"] as const;
/**
 * A repeat this soon is the first request delivered twice, not a second one: a terminal's Ctrl-C
 * reaches the whole process group, and npm or the CLI wrapper relays it as well.
 */
const duplicateWindowMs = 500;

/**
 * On SIGTERM or SIGINT, shuts down gracefully with `close` (by default the server's own) and exits
 * 0, or 1 when closing failed; a second signal (not the first one delivered twice) exits at once.
 * Returns a function that uninstalls.
 */
export function installSignalHandlers(
  server: Pick<RunningServer, "close">,
  close: () => Promise<void> = () => server.close(),
  exit: (code: number) => void = (code) => process.exit(code),
  now: () => number = Date.now,
): () => void {
  let firstAt: number | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (firstAt !== undefined) {
      if (now() - firstAt < duplicateWindowMs) return;
      console.error(`${signal} again: exiting without waiting for in-flight calls`);
      exit(1);
      return;
    }
    firstAt = now();
    console.error(`${signal}: shutting down gracefully`);
    close().then(
      () => exit(0),
      (error: unknown) => {
        console.error("graceful shutdown failed", error);
        exit(1);
      },
    );
  };
  for (const signal of stopSignals) process.on(signal, onSignal);
  return () => {
    for (const signal of stopSignals) process.off(signal, onSignal);
  };
}
