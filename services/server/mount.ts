import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { type ConnectRouter, createMethodImplSpec, createServiceImplSpec, type MethodImpl, type MethodImplSpec } from "@connectrpc/connect";
import type { UniversalHandlerOptions } from "@connectrpc/connect/protocol";
import { mountHealth, ServingStatus, type HealthRegistry } from "./health.js";
import { mountReflection } from "./reflection.js";

/** What every server of the mesh mounts, whichever runtime answers the requests. */
export interface MountOptions {
  /** Mounts the caller's services. */
  readonly routes: (router: ConnectRouter) => void;
  /** Type names of services whose RPCs are never compressed. */
  readonly uncompressedServices?: readonly string[] | undefined;
}

/**
 * Mounts the caller's services (media ones without compression), then health and reflection, and
 * collects every implementation in `mounted` (the Node server's fast path serves them from there).
 */
export function mountServices(router: ConnectRouter, options: MountOptions, health: HealthRegistry, mounted: MethodImplSpec[] = []): void {
  const uncompressed = new Set(options.uncompressedServices ?? []);
  const withCompression = <O extends object>(typeName: string, handlerOptions: O | undefined) =>
    uncompressed.has(typeName) ? { ...handlerOptions, acceptCompression: [] } : handlerOptions;
  const mounting: ConnectRouter = {
    get handlers() {
      return router.handlers;
    },
    service(service, implementation, handlerOptions) {
      router.service(service, implementation, withCompression(service.typeName, handlerOptions));
      mounted.push(...Object.values(createServiceImplSpec(service, implementation).methods));
      return mounting;
    },
    rpc<M extends DescMethod>(method: M, implementation: MethodImpl<M>, handlerOptions?: Partial<UniversalHandlerOptions>) {
      router.rpc(method, implementation, withCompression(method.parent.typeName, handlerOptions));
      mounted.push(createMethodImplSpec(method, implementation));
      return mounting;
    },
  };
  options.routes(mounting);
  mountHealth(mounting, health);
  const services = new Map<string, DescService>();
  for (const handler of router.handlers) services.set(handler.service.typeName, handler.service);
  for (const typeName of services.keys()) health.set(typeName, ServingStatus.SERVING);
  mountReflection(mounting, [...services.values()]);
}
