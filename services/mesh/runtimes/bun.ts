// `npm run serve:bun`: the embedded mesh on Bun, served by `Bun.serve({ fetch })`.
import { serveEmbeddedOnFetchRuntime } from "./fetch-runtime.js";

/** The part of Bun's global this entry uses (the project type-checks against Node's types only). */
declare const Bun: {
  readonly version: string;
  serve(options: {
    hostname: string;
    port: number;
    /** Seconds a connection may stay silent; 0 = no limit (an SSE stream or a quiet WatchRun may idle for minutes). */
    idleTimeout: number;
    fetch: (request: Request) => Promise<Response>;
  }): { stop(closeActiveConnections?: boolean): Promise<void> };
};

await serveEmbeddedOnFetchRuntime(`Bun ${Bun.version}`, async (fetch, { hostname, port }) => {
  const server = Bun.serve({ hostname, port, idleTimeout: 0, fetch });
  return { stopGracefully: () => server.stop(false) };
});
