import type { ConnectRouter } from "@connectrpc/connect";
import type { Meter } from "@opentelemetry/api";
import type { HttpRoute } from "../shared/http-route.js";
import type { UpgradeRoute } from "../shared/upgrade-route.js";
import type { EncodedServerStream } from "./fast-path/index.js";

/**
 * One service as a mesh process serves it, whatever else shares the process: what `startServer` mounts
 * (RPCs, plain-HTTP paths, pre-encoded server streams), its instruments, and how to stop what backs it.
 * The embedded mesh serves a list of them on one port; a distributed service process serves one.
 */
export interface MeshModule {
  /** Mounts the module's RPC services. */
  mount(router: ConnectRouter): void;
  readonly httpRoutes: readonly HttpRoute[];
  /** HTTP/1.1 `Upgrade` endpoints (WebSocket), if any. */
  readonly upgradeRoutes?: readonly UpgradeRoute[];
  /** Server streams also served pre-encoded (see `ServerOptions.encodedStreams`). */
  readonly encodedStreams: readonly EncodedServerStream[];
  /** Binds the module's counters to instruments on `meter`; called once. */
  registerMetrics(meter: Meter): void;
  close(): Promise<void>;
}
