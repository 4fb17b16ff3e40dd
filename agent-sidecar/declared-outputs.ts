import { Code, ConnectError } from "@connectrpc/connect";
import type { MediaConstraints, PinType } from "../gen/mentatlab/v1/common_pb.js";
import type { Pin } from "../gen/mentatlab/v1/registry_pb.js";
import type { SidecarConfig } from "./config.js";
import type { GatewayClients } from "./gateway-clients.js";
import { withRetries, type Backoff } from "./retry.js";

/** What the node's agent declares about its outputs. */
export interface DeclaredOutputs {
  /** Output pin types by pin name; empty when neither the configuration nor a manifest says. */
  readonly types: ReadonlyMap<string, PinType>;
  /** The media constraints (MIME types, size, dimensions, duration) each output pin declares, by pin name. */
  readonly constraints: ReadonlyMap<string, MediaConstraints>;
}

/**
 * The node's output pins: types from the configuration when the executor gave them, otherwise from the
 * agent's registered manifest (a plain-contract executor names only the agent); media constraints always
 * from the manifest, which is the only place they are declared. Without either the sidecar still works,
 * but cannot refuse a wrong output before storing it.
 */
export async function declaredOutputs(
  config: SidecarConfig,
  registry: GatewayClients["registry"],
  retry: { readonly attempts: number; readonly backoff: Backoff },
): Promise<DeclaredOutputs> {
  const pins = config.agentId ? await registeredOutputs(config, registry, retry) : undefined;
  return {
    types: config.outputPins.size > 0 || !pins ? config.outputPins : new Map(pins.map((pin) => [pin.name, pin.type])),
    constraints: new Map((pins ?? []).flatMap((pin) => (pin.media ? [[pin.name, pin.media] as const] : []))),
  };
}

/** The output pins of the agent's registered manifest; undefined for an agent the registry does not know. */
async function registeredOutputs(
  config: SidecarConfig,
  registry: GatewayClients["registry"],
  retry: { readonly attempts: number; readonly backoff: Backoff },
): Promise<readonly Pin[] | undefined> {
  try {
    const { agent } = await withRetries(retry.attempts, retry.backoff, undefined, () =>
      registry.getAgent({ id: config.agentId, version: config.agentVersion }),
    );
    return agent?.outputs ?? [];
  } catch (error) {
    // An agent run outside the registry (e.g. by hand) has no manifest to read; anything else is a fault.
    if (error instanceof ConnectError && error.code === Code.NotFound) return undefined;
    throw error;
  }
}
