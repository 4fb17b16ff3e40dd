/**
 * A port the process cannot take is an operator's setting, not a bug: this says in one line which
 * address failed and which variable to change, instead of the listener's stack trace.
 */
export function listenFailureMessage(error: unknown, portVariable = "PORT"): string | undefined {
  if (!(error instanceof Error) || !("syscall" in error) || error.syscall !== "listen") return undefined;
  const { code, address, port } = error as NodeJS.ErrnoException & { address?: string; port?: number };
  const where = `${address ?? "?"}:${port ?? "?"}`;
  switch (code) {
    case "EADDRINUSE":
      return `cannot listen on ${where}: the port is already in use; stop what holds it or set ${portVariable} to a free port (${portVariable}=0 picks any)`;
    case "EACCES":
      return `cannot listen on ${where}: this user may not bind that port; set ${portVariable} to 1024 or above`;
    case "EADDRNOTAVAIL":
      return `cannot listen on ${where}: no interface of this machine has that address; set MENTATLAB_HOST (default 127.0.0.1)`;
    default:
      return undefined;
  }
}
