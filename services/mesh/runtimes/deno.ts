// `npm run serve:deno`: the embedded mesh on Deno, served by `Deno.serve(handler)`.
import { serveEmbeddedOnFetchRuntime } from "./fetch-runtime.js";

/** The part of Deno's global this entry uses (the project type-checks against Node's types only). */
declare const Deno: {
  readonly version: { readonly deno: string };
  serve(options: { hostname: string; port: number; onListen: () => void }, handler: (request: Request) => Promise<Response>): { shutdown(): Promise<void> };
};

await serveEmbeddedOnFetchRuntime(`Deno ${Deno.version.deno}`, async (fetch, { hostname, port }) => {
  // onListen replaces Deno's own "Listening on" line: the banner says where the mesh is.
  const server = Deno.serve({ hostname, port, onListen: () => {} }, fetch);
  return { stopGracefully: () => server.shutdown() };
});
