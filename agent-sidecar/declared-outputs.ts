import { Code, ConnectError } from "@connectrpc/connect";
import type { PinType } from "../gen/mentatlab/v1/common_pb.js";
import type { SidecarConfig } from "./config.js";
import type { GatewayClients } from "./gateway-clients.js";
import { withRetries, type Backoff } from "./retry.js";

/**
 * The node's output pin types: from the configuration when the executor gave them, otherwise from the
 * agent's registered manifest (a plain-contract executor names only the agent). Without either the
 * sidecar still works, but cannot refuse a wrong output before storing it.
 */
export async function declaredOutputs(
  config: SidecarConfig,
  registry: GatewayClients["registry"],
  retry: { readonly attempts: number; readonly backoff: Backoff },
): Promise<ReadonlyMap<string, PinType>> {
  if (config.outputPins.size > 0 || !config.agentId) return config.outputPins;
  try {
    const { agent } = await withRetries(retry.attempts, retry.backoff, undefined, () =>
      registry.getAgent({ id: config.agentId, version: config.agentVersion }),
    );
    return new Map((agent?.outputs ?? []).map((pin) => [pin.name, pin.type]));
  } catch (error) {
    // An agent run outside the registry (e.g. by hand) has no manifest to read; anything else is a fault.
    if (error instanceof ConnectError && error.code === Code.NotFound) return config.outputPins;
    throw error;
  }
}
