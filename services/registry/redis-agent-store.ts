import { fromJsonString, toJsonString } from "@bufbuild/protobuf";
import type { Redis } from "ioredis";
import { type AgentManifest, AgentManifestSchema } from "../../gen/mentatlab/v1/registry_pb.js";
import { redisUnavailable } from "../shared/redis.js";
import { agentKey, type AgentStore } from "./agent-store.js";

const unavailable = redisUnavailable("the agent registry");

/**
 * Manifests in one Redis hash (`<prefix>agents`, field `id@version`), shared by every orchestrator
 * replica. Registries hold hundreds of manifests, not millions, so listing reads the whole hash.
 */
export class RedisAgentStore implements AgentStore {
  private readonly key: string;

  constructor(
    private readonly redis: Redis,
    keyPrefix: string,
  ) {
    this.key = `${keyPrefix}agents`;
  }

  async put(manifest: AgentManifest): Promise<void> {
    await this.redis.hset(this.key, agentKey(manifest), toJsonString(AgentManifestSchema, manifest)).catch(unavailable);
  }

  async versions(id: string): Promise<AgentManifest[]> {
    return (await this.list(id)).filter((m) => m.id === id);
  }

  async list(idPrefix: string): Promise<AgentManifest[]> {
    const all = await this.redis.hgetall(this.key).catch(unavailable);
    return Object.entries(all)
      .filter(([field]) => field.startsWith(idPrefix))
      .map(([, json]) => fromJsonString(AgentManifestSchema, json));
  }

  async close(): Promise<void> {}
}
