import type { Redis } from "ioredis";
import type { QuotaLimits, QuotaStore, Reservation, Usage } from "./quota-store.js";
import { unavailableOnError } from "./redis-errors.js";

// Each script runs atomically in Redis, so concurrent uploads on any replica see one consistent usage.
const RESERVE = `
local u = tonumber(redis.call('GET', KEYS[1]) or '0')
local w = tonumber(redis.call('GET', KEYS[2]) or '0')
local n = tonumber(ARGV[1])
if u + n > tonumber(ARGV[2]) then return {0, u} end
if w + n > tonumber(ARGV[3]) then return {2, w} end
redis.call('INCRBY', KEYS[1], n)
redis.call('INCRBY', KEYS[2], n)
return {1, 0}`;

const RELEASE = `
local n = tonumber(ARGV[1])
for i = 1, 2 do
  local left = redis.call('DECRBY', KEYS[i], n)
  if left < 0 then redis.call('SET', KEYS[i], 0) end
end
return 1`;

const COMMIT = `
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[3]) == 1 then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  redis.call('INCR', KEYS[3])
end
return 1`;

const REFUND = `
local bytes = redis.call('HGET', KEYS[1], ARGV[1])
if not bytes then return 0 end
local user = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('DECR', KEYS[3]) < 0 then redis.call('SET', KEYS[3], 0) end
local userKey = ARGV[2] .. user
for _, key in ipairs({userKey, KEYS[4]}) do
  if redis.call('DECRBY', key, bytes) < 0 then redis.call('SET', key, 0) end
end
return tonumber(bytes)`;

/** Quotas shared by every replica through Redis. */
export class RedisQuotaStore implements QuotaStore {
  constructor(
    private readonly redis: Redis,
    readonly limits: QuotaLimits,
    private readonly prefix = "mentatlab:storage:quota:",
  ) {}

  private userKey(user: string): string {
    return `${this.prefix}user:${user}`;
  }
  private workspaceKey(workspace: string, what: "used" | "charges" | "owners" | "count"): string {
    return `${this.prefix}ws:${what}:${workspace}`;
  }

  async reserve(user: string, workspace: string, bytes: number): Promise<Reservation> {
    const [verdict, used] = (await unavailableOnError("the quota store", () =>
      this.redis.eval(
        RESERVE,
        2,
        this.userKey(user),
        this.workspaceKey(workspace, "used"),
        bytes,
        this.limits.userBytes,
        this.limits.workspaceBytes,
      ),
    )) as [number, number];
    if (verdict === 1) return { granted: true };
    return verdict === 0
      ? { granted: false, scope: "user", usedBytes: Number(used), limitBytes: this.limits.userBytes }
      : { granted: false, scope: "workspace", usedBytes: Number(used), limitBytes: this.limits.workspaceBytes };
  }

  async release(user: string, workspace: string, bytes: number): Promise<void> {
    await unavailableOnError("the quota store", () =>
      this.redis.eval(RELEASE, 2, this.userKey(user), this.workspaceKey(workspace, "used"), bytes),
    );
  }

  async commit(workspace: string, refId: string, user: string, bytes: number): Promise<void> {
    await unavailableOnError("the quota store", () =>
      this.redis.eval(
        COMMIT,
        3,
        this.workspaceKey(workspace, "charges"),
        this.workspaceKey(workspace, "owners"),
        this.workspaceKey(workspace, "count"),
        refId,
        user,
        bytes,
      ),
    );
  }

  async refund(workspace: string, refId: string): Promise<number> {
    const freed = await unavailableOnError("the quota store", () =>
      this.redis.eval(
        REFUND,
        4,
        this.workspaceKey(workspace, "charges"),
        this.workspaceKey(workspace, "owners"),
        this.workspaceKey(workspace, "count"),
        this.workspaceKey(workspace, "used"),
        refId,
        this.userKey(""),
      ),
    );
    return Number(freed);
  }

  async usage(user: string, workspace: string): Promise<Usage> {
    const [u, w, c] = await unavailableOnError("the quota store", () =>
      this.redis.mget(this.userKey(user), this.workspaceKey(workspace, "used"), this.workspaceKey(workspace, "count")),
    );
    return {
      userUsedBytes: Number(u ?? 0),
      workspaceUsedBytes: Number(w ?? 0),
      workspaceObjectCount: Number(c ?? 0),
    };
  }

  async close(): Promise<void> {}
}
