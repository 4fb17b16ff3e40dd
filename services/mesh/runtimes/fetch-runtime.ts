import { ServingStatus } from "../../server/health.js";
import { installSignalHandlers } from "../../server/signals.js";
import { ConfigError } from "../../shared/env.js";
import { fetchEmbedded } from "../embedded.js";

/** A Fetch-API runtime's listener, as `Bun.serve` and `Deno.serve` return it. */
export interface FetchListener {
  /** Stops accepting and resolves once the requests in flight have finished. */
  stopGracefully(): Promise<void>;
}

/** Starts the runtime's own server on `hostname:port` with `handler`; rejects when it cannot listen. */
export type ListenFetch = (handler: (request: Request) => Promise<Response>, address: { hostname: string; port: number }) => Promise<FetchListener>;

/** Once the grace period is over, how long aborted calls get to send their error before the process exits. */
const abortedCallsMs = 1_000;

const sleep = (ms: number) => new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), ms).unref?.());

/**
 * Runs the embedded mesh on a Fetch-API runtime (`runtime` names it in the banner): every service
 * in this process, listening through `listen`. SIGTERM and SIGINT shut it down as the Node server
 * does: health turns NOT_SERVING, calls in flight get the grace period, then end with UNAVAILABLE.
 */
export async function serveEmbeddedOnFetchRuntime(runtime: string, listen: ListenFetch): Promise<void> {
  let mesh: Awaited<ReturnType<typeof fetchEmbedded>>;
  try {
    mesh = await fetchEmbedded();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`mentatlab: ${error.message}`);
    process.exit(1);
  }
  const { host, port, shutdownGraceMs } = mesh.serverConfig;
  let listener: FetchListener;
  try {
    listener = await listen((request) => mesh.server.fetch(request), { hostname: host, port });
  } catch (error) {
    await mesh.closeBackends();
    console.error(
      `mentatlab: cannot listen on ${host}:${port} (${error instanceof Error ? error.message : String(error)}); set PORT to a free port (PORT=0 picks any) or MENTATLAB_HOST`,
    );
    process.exit(1);
  }
  const close = async () => {
    mesh.server.health.setAll(ServingStatus.NOT_SERVING);
    const drained = listener.stopGracefully();
    if ((await Promise.race([drained, sleep(shutdownGraceMs)])) === "timeout") {
      mesh.server.abortInFlight();
      await Promise.race([drained, sleep(abortedCallsMs)]);
    }
    await mesh.closeBackends();
  };
  installSignalHandlers({ close }, close);
  console.log(`MentatLab Mesh is serving Connect and gRPC-web on ${mesh.url} (${runtime}; native gRPC needs the Node server)`);
  if (mesh.adminKey) {
    console.log(`No API keys configured: a development admin key was created (kept in the data dir).`);
    console.log(`  Authorization: Bearer ${mesh.adminKey}`);
    // Reflection is a bidi stream, which needs HTTP/2 end to end: buf curl reads the schema from the repo.
    console.log(
      `  try: npx buf curl --schema . --protocol connect -H "Authorization: Bearer ${mesh.adminKey}" ${mesh.url}/mentatlab.v1.StorageService/GetUsage`,
    );
  } else {
    console.log("Authenticate with `Authorization: Bearer <key>` using a key from MENTATLAB_API_KEYS.");
  }
}
