import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import {
  Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
  HealthCheckResponseSchema,
  HealthListResponseSchema,
  type HealthCheckResponse,
} from "../../gen/grpc/health/v1/health_pb.js";

export { ServingStatus };

/** Serving status per service name; `""` is the server as a whole. */
export interface HealthRegistry {
  /** Sets a service's status and tells its watchers. */
  set(service: string, status: ServingStatus): void;
  /** The status of a service, or undefined when it was never registered. */
  get(service: string): ServingStatus | undefined;
  /** Marks every registered service (and the server) NOT_SERVING, e.g. at shutdown. */
  setAll(status: ServingStatus): void;
  /** Every registered service with its status. */
  list(): ReadonlyMap<string, ServingStatus>;
  /** Yields the current status, then every change, until `signal` aborts. */
  watch(service: string, signal: AbortSignal): AsyncIterable<ServingStatus>;
}

/** An in-process health registry; the overall status `""` starts SERVING. */
export function createHealthRegistry(): HealthRegistry {
  const statuses = new Map<string, ServingStatus>([["", ServingStatus.SERVING]]);
  const listeners = new Set<(service: string) => void>();
  const notify = (service: string) => {
    for (const listener of listeners) listener(service);
  };
  return {
    set(service, status) {
      if (statuses.get(service) === status) return;
      statuses.set(service, status);
      notify(service);
    },
    get: (service) => statuses.get(service),
    setAll(status) {
      for (const service of statuses.keys()) this.set(service, status);
    },
    list: () => new Map(statuses),
    async *watch(service, signal) {
      let changed: (() => void) | undefined;
      let pending = true;
      const listener = (name: string) => {
        if (name !== service) return;
        pending = true;
        changed?.();
      };
      listeners.add(listener);
      const onAbort = () => changed?.();
      signal.addEventListener("abort", onAbort);
      try {
        let last: ServingStatus | undefined;
        for (;;) {
          signal.throwIfAborted();
          if (pending) {
            pending = false;
            const status = statuses.get(service) ?? ServingStatus.SERVICE_UNKNOWN;
            // Watchers only hear about real transitions, as the gRPC health spec asks.
            if (status !== last) {
              last = status;
              yield status;
            }
            continue;
          }
          await new Promise<void>((resolve) => (changed = resolve));
          changed = undefined;
        }
      } finally {
        listeners.delete(listener);
        signal.removeEventListener("abort", onAbort);
      }
    },
  };
}

/** Mounts `grpc.health.v1.Health` (Check, Watch, List) answering from `registry`. */
export function mountHealth(router: ConnectRouter, registry: HealthRegistry): void {
  const response = (status: ServingStatus): HealthCheckResponse => create(HealthCheckResponseSchema, { status });
  router.service(Health, {
    check(request) {
      const status = registry.get(request.service);
      if (status === undefined) {
        throw new ConnectError(`unknown service "${request.service}": ask for "" or a served service name`, Code.NotFound);
      }
      return response(status);
    },
    async *watch(request, context: HandlerContext) {
      for await (const status of registry.watch(request.service, context.signal)) {
        yield response(status);
      }
    },
    list() {
      const statuses: Record<string, HealthCheckResponse> = {};
      for (const [service, status] of registry.list()) statuses[service] = response(status);
      return create(HealthListResponseSchema, { statuses });
    },
  });
}
