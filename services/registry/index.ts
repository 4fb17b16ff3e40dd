/**
 * The agent registry: manifests parsed and validated (every violation at once), their resources
 * (`calculateResources`), the stores (memory or file, SQLite, Redis), the catalog that resolves an
 * agent id and version range, and AgentRegistryService. The orchestrator serves it and resolves a
 * flow's agents through the same catalog; this is the only way in for other services.
 *
 * @example
 * ```ts
 * import { AgentCatalog, MemoryAgentStore, createRegistryService } from "../registry/index.js";
 *
 * const store = new MemoryAgentStore();
 * const registry = createRegistryService(store); // mount as AgentRegistryService
 * const catalog = new AgentCatalog(store); // resolve("image-thumbnail", "^1") for a flow's node
 * ```
 */
export { AgentCatalog, isResolveFailure, type ResolveFailure } from "./agent-catalog.js";
export type { AgentStore } from "./agent-store.js";
export { MemoryAgentStore } from "./memory-agent-store.js";
export { RedisAgentStore } from "./redis-agent-store.js";
export { SqliteAgentStore } from "./sqlite-agent-store.js";
export { createRegistryService } from "./registry-service.js";
export { calculateResources, type ResolvedResources } from "./resources.js";
export { decodeRunPageToken, encodeRunPageToken, pageSizeOf } from "./page-token.js";
