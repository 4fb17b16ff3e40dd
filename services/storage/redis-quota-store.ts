import type { Redis } from "ioredis";
import { redisCall } from "../shared/redis.js";
import type { ChargedRef, Lease, QuotaLimits, QuotaStore, Reservation, Usage } from "./quota-store.js";

// Every script runs atomically in Redis, so concurrent uploads on any replica see one consistent usage.
// Keys derived inside the scripts (per user, per lease) assume one Redis, not a cluster.

// ARGV[1] is the key prefix. Ends lease `id`, giving back what it held; returns the bytes.
const END_LEASE = `
local function sub(key, n)
  if redis.call('DECRBY', key, n) < 0 then redis.call('SET', key, 0) end
end
local function endLease(prefix, id)
  local key = prefix .. 'lease:' .. id
  local f = redis.call('HMGET', key, 'user', 'ws', 'bytes')
  redis.call('DEL', key)
  redis.call('ZREM', prefix .. 'leases', id)
  if not f[1] then return 0 end
  local n = tonumber(f[3] or '0')
  sub(prefix .. 'user:' .. f[1], n)
  sub(prefix .. 'ws:used:' .. f[2], n)
  return n
end
`;

// ARGV: prefix, bytes, userLimit, workspaceLimit, user, workspace, expiresAtMs, leaseId
const RESERVE = `
local prefix = ARGV[1]
local userKey = prefix .. 'user:' .. ARGV[5]
local wsKey = prefix .. 'ws:used:' .. ARGV[6]
local u = tonumber(redis.call('GET', userKey) or '0')
local w = tonumber(redis.call('GET', wsKey) or '0')
local n = tonumber(ARGV[2])
if u + n > tonumber(ARGV[3]) then return {0, u} end
if w + n > tonumber(ARGV[4]) then return {2, w} end
redis.call('INCRBY', userKey, n)
redis.call('INCRBY', wsKey, n)
local lease = prefix .. 'lease:' .. ARGV[8]
redis.call('HSET', lease, 'user', ARGV[5], 'ws', ARGV[6])
redis.call('HINCRBY', lease, 'bytes', n)
redis.call('ZADD', prefix .. 'leases', ARGV[7], ARGV[8])
return {1, 0}`;

// ARGV: prefix, leaseId
const RELEASE = `${END_LEASE}
return endLease(ARGV[1], ARGV[2])`;

// ARGV: prefix, leaseId, refId, user, workspace, bytes
const COMMIT = `${END_LEASE}
local prefix = ARGV[1]
endLease(prefix, ARGV[2])
local ws = ARGV[5]
if redis.call('HSETNX', prefix .. 'ws:charges:' .. ws, ARGV[3], ARGV[6]) == 1 then
  redis.call('HSET', prefix .. 'ws:owners:' .. ws, ARGV[3], ARGV[4])
  redis.call('INCR', prefix .. 'ws:count:' .. ws)
  redis.call('INCRBY', prefix .. 'user:' .. ARGV[4], ARGV[6])
  redis.call('INCRBY', prefix .. 'ws:used:' .. ws, ARGV[6])
end
return 1`;

// ARGV: prefix, nowMs, batch
const RECLAIM = `${END_LEASE}
local ids = redis.call('ZRANGEBYSCORE', ARGV[1] .. 'leases', '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do endLease(ARGV[1], id) end
return #ids`;

// ARGV: prefix, workspace, refId
const REFUND = `
local prefix = ARGV[1]
local ws = ARGV[2]
local bytes = redis.call('HGET', prefix .. 'ws:charges:' .. ws, ARGV[3])
if not bytes then return 0 end
local user = redis.call('HGET', prefix .. 'ws:owners:' .. ws, ARGV[3])
redis.call('HDEL', prefix .. 'ws:charges:' .. ws, ARGV[3])
redis.call('HDEL', prefix .. 'ws:owners:' .. ws, ARGV[3])
if redis.call('DECR', prefix .. 'ws:count:' .. ws) < 0 then redis.call('SET', prefix .. 'ws:count:' .. ws, 0) end
for _, key in ipairs({prefix .. 'user:' .. user, prefix .. 'ws:used:' .. ws}) do
  if redis.call('DECRBY', key, bytes) < 0 then redis.call('SET', key, 0) end
end
return tonumber(bytes)`;

const RECLAIM_BATCH = 100;

/** Quotas shared by every replica through Redis. */
export class RedisQuotaStore implements QuotaStore {
  constructor(
    private readonly redis: Redis,
    readonly limits: QuotaLimits,
    private readonly prefix = "mentatlab:storage:quota:",
  ) {}

  private run(script: string, ...args: (string | number)[]): Promise<unknown> {
    return redisCall("the quota store", () => this.redis.eval(script, 0, this.prefix, ...args));
  }

  async reserve(lease: Lease, bytes: number, expiresAtMs: number): Promise<Reservation> {
    const [verdict, used] = (await this.run(
      RESERVE,
      bytes,
      this.limits.userBytes,
      this.limits.workspaceBytes,
      lease.user,
      lease.workspace,
      expiresAtMs,
      lease.id,
    )) as [number, number];
    if (verdict === 1) return { granted: true };
    return verdict === 0
      ? { granted: false, scope: "user", usedBytes: Number(used), limitBytes: this.limits.userBytes }
      : { granted: false, scope: "workspace", usedBytes: Number(used), limitBytes: this.limits.workspaceBytes };
  }

  async renew(leaseId: string, expiresAtMs: number): Promise<void> {
    await redisCall("the quota store", () => this.redis.zadd(`${this.prefix}leases`, "XX", expiresAtMs, leaseId));
  }

  async commit(lease: Lease, refId: string, bytes: number): Promise<void> {
    await this.run(COMMIT, lease.id, refId, lease.user, lease.workspace, bytes);
  }

  async release(leaseId: string): Promise<void> {
    await this.run(RELEASE, leaseId);
  }

  async reclaimExpired(nowMs: number): Promise<number> {
    let total = 0;
    for (;;) {
      const ended = Number(await this.run(RECLAIM, nowMs, RECLAIM_BATCH));
      total += ended;
      if (ended < RECLAIM_BATCH) return total;
    }
  }

  async refund(workspace: string, refId: string): Promise<number> {
    return Number(await this.run(REFUND, workspace, refId));
  }

  async *charges(): AsyncIterable<ChargedRef> {
    const hashes = `${this.prefix}ws:charges:`;
    for await (const keys of this.redis.scanStream({ match: `${hashes}*`, count: 500 }) as AsyncIterable<string[]>) {
      for (const key of keys) {
        const workspace = key.slice(hashes.length);
        for await (const fields of this.redis.hscanStream(key, { count: 500 }) as AsyncIterable<string[]>) {
          // HSCAN pages alternate field and value: the field is the ref id.
          for (let i = 0; i < fields.length; i += 2) yield { workspace, refId: fields[i]! };
        }
      }
    }
  }

  async usage(user: string, workspace: string): Promise<Usage> {
    const [u, w, c] = await redisCall("the quota store", () =>
      this.redis.mget(`${this.prefix}user:${user}`, `${this.prefix}ws:used:${workspace}`, `${this.prefix}ws:count:${workspace}`),
    );
    return {
      userUsedBytes: Number(u ?? 0),
      workspaceUsedBytes: Number(w ?? 0),
      workspaceObjectCount: Number(c ?? 0),
    };
  }

  async close(): Promise<void> {}
}
