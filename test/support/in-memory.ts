import type { DescService } from "@bufbuild/protobuf";
import { createClient, createRouterTransport, type Client, type ConnectRouter, type Interceptor } from "@connectrpc/connect";
import { permissions } from "../../services/shared/auth/roles.js";
import { principalKey, type Principal } from "../../services/shared/principal.js";

/** A principal for tests; permissions default to every permission an RPC can require. */
export function testPrincipal(overrides: Partial<Principal> & { permissions?: Iterable<string> } = {}): Principal {
  return {
    user: overrides.user ?? "alice",
    workspace: overrides.workspace ?? "ws-test",
    roles: overrides.roles ?? ["admin"],
    permissions: new Set(overrides.permissions ?? permissions),
    ...(overrides.run ? { run: overrides.run } : {}),
  };
}

/** Attaches `principal` to every request, as the auth interceptor would after checking a key. */
export function attachPrincipal(principal: Principal): Interceptor {
  return (next) => (req) => {
    req.contextValues.set(principalKey, principal);
    return next(req);
  };
}

/**
 * A client for `service` talking to handlers registered by `routes` over Connect's in-memory transport,
 * with `principal` attached to every request as the auth interceptor would. For unit tests of handlers;
 * `clientInterceptors` run on the client side (e.g. to lose an answer the server did send).
 */
export function inMemoryClient<S extends DescService>(
  service: S,
  routes: (router: ConnectRouter) => void,
  principal: Principal = testPrincipal(),
  clientInterceptors: Interceptor[] = [],
): Client<S> {
  return createClient(
    service,
    createRouterTransport(routes, { router: { interceptors: [attachPrincipal(principal)] }, transport: { interceptors: clientInterceptors } }),
  );
}
