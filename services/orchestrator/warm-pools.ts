import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { AgentManifest } from "../../gen/mentatlab/v1/registry_pb.js";
import { WarmPool, type WarmWorker } from "./warm-pool.js";

/** The orchestrator's defaults for warm pools (ORCHESTRATOR_WARM_POOL_SIZE, ORCHESTRATOR_WARM_POOL_MAX_ATTEMPTS). */
export interface WarmPoolDefaults {
  readonly size: number;
  readonly maxAttemptsPerWorker: number;
}

/**
 * The warm pools of one executor, one per long_running agent version and registration, made at the
 * agent's first attempt. A manifest's warm_pool wins over the defaults; a size of 0 in both runs the
 * agent cold.
 */
export class WarmPools {
  /** By agent `id@version`, with the registration each was made for. */
  private readonly pools = new Map<string, WarmPool>();
  private readonly registeredAt = new Map<string, number>();
  private closed = false;

  constructor(
    private readonly defaults: WarmPoolDefaults,
    private readonly stopGraceMs: number,
    private readonly startWorker: (agent: AgentManifest) => WarmWorker,
  ) {}

  /** The pool for `agent`'s attempts, or undefined when they run cold. */
  poolFor(agent: AgentManifest): WarmPool | undefined {
    if (!agent.longRunning || this.closed) return undefined;
    const size = agent.warmPool?.size || this.defaults.size;
    if (size === 0) return undefined;
    // A manifest registered again gets fresh workers: they may keep what they read of it.
    const label = `${agent.id}@${agent.version}`;
    const registeredAt = agent.registeredAt ? timestampMs(agent.registeredAt) : 0;
    let pool = this.pools.get(label);
    if (pool && this.registeredAt.get(label) !== registeredAt) {
      void pool.close();
      pool = undefined;
    }
    if (!pool) {
      const settings = {
        size,
        maxAttemptsPerWorker: agent.warmPool?.maxAttemptsPerWorker || this.defaults.maxAttemptsPerWorker,
        stopGraceMs: this.stopGraceMs,
      };
      pool = new WarmPool(
        label,
        settings,
        () => this.startWorker(agent),
        (line) => console.log(`orchestrator: warm pool ${label}: ${line}`),
      );
      this.pools.set(label, pool);
      this.registeredAt.set(label, registeredAt);
    }
    return pool;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.pools.values()].map((pool) => pool.close()));
  }
}
