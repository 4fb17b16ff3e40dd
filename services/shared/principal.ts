import { Code, ConnectError, createContextKey, type HandlerContext } from "@connectrpc/connect";

/** Who is calling: resolved once per request by the auth interceptor, read by every handler. */
export interface Principal {
  /** User id, e.g. `alice`. */
  readonly user: string;
  /** Workspace the caller acts in; every object, stream and run is scoped to it. */
  readonly workspace: string;
  /** Role names, e.g. `multimodal_producer`. */
  readonly roles: readonly string[];
  /** Permissions the roles grant, e.g. `storage:upload`. */
  readonly permissions: ReadonlySet<string>;
  /** Set when the caller is a sidecar acting for one node of one run (a run token, not an API key). */
  readonly run?: { readonly runId: string; readonly nodeId: string; readonly attempt: number };
}

export const principalKey = createContextKey<Principal | undefined>(undefined, {
  description: "the authenticated caller",
});

/** The authenticated caller of the current RPC. */
export function principalOf(ctx: Pick<HandlerContext, "values">): Principal {
  const principal = ctx.values.get(principalKey);
  if (!principal) {
    // Only reachable when a service is mounted without the auth interceptor: a wiring bug, not a client error.
    throw new ConnectError("no authenticated caller on this request", Code.Unauthenticated);
  }
  return principal;
}
