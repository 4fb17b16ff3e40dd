import type { Redis } from "ioredis";
import { redisCall } from "../shared/redis.js";
import { uploadHoldOf, type Hold, type HoldStore } from "./hold-store.js";
import type { StoredRef } from "./ref-index.js";
import { segment } from "./keys.js";

// One hash per object (field: holder, value: "expiresMs createdMs") and one set per workspace naming
// its held objects, so usage and the sweeper walk holds without scanning the keyspace.
const PREFIX = "mentatlab:holds:";
const WORKSPACES = `${PREFIX}workspaces`;
const ADOPTED = `${PREFIX}adopted`;
const WHAT = "the holds in Redis";

const objectKey = (workspace: string, refId: string) => `${PREFIX}obj:${segment(workspace)}:${refId}`;
const workspaceKey = (workspace: string) => `${PREFIX}ws:${segment(workspace)}`;

// KEYS: object hash, workspace set, workspaces set. ARGV: holder, expiresMs, createdMs, refId, workspace.
// A renewal keeps the creation time.
const ADD = `
local prev = redis.call('HGET', KEYS[1], ARGV[1])
local created = ARGV[3]
if prev then created = string.match(prev, ' (%d+)$') end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. created)
redis.call('SADD', KEYS[2], ARGV[4])
redis.call('SADD', KEYS[3], ARGV[5])
`;

// KEYS: object hash, workspace set. ARGV: holder, refId.
const REMOVE = `
local n = redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[2]) end
return n
`;

function decode(workspace: string, refId: string, holder: string, value: string): Hold {
  const [expiresMs, createdMs] = value.split(" ").map(Number);
  return { workspace, refId, holder, expiresMs: expiresMs ?? 0, createdMs: createdMs ?? 0 };
}

/** Holds in Redis, shared by every storage replica. */
export class RedisHoldStore implements HoldStore {
  constructor(private readonly redis: Redis) {}

  async add(hold: Hold): Promise<void> {
    await redisCall(WHAT, () =>
      this.redis.eval(
        ADD,
        3,
        objectKey(hold.workspace, hold.refId),
        workspaceKey(hold.workspace),
        WORKSPACES,
        hold.holder,
        hold.expiresMs,
        hold.createdMs,
        hold.refId,
        hold.workspace,
      ),
    );
  }

  async remove(workspace: string, refId: string, holder: string): Promise<boolean> {
    const removed = await redisCall(WHAT, () => this.redis.eval(REMOVE, 2, objectKey(workspace, refId), workspaceKey(workspace), holder, refId));
    return Number(removed) > 0;
  }

  async holdsOf(workspace: string, refId: string): Promise<Hold[]> {
    const fields = await redisCall(WHAT, () => this.redis.hgetall(objectKey(workspace, refId)));
    return Object.entries(fields).map(([holder, value]) => decode(workspace, refId, holder, value));
  }

  async *ofWorkspace(workspace: string): AsyncIterable<Hold> {
    for await (const refIds of this.redis.sscanStream(workspaceKey(workspace), { count: 500 }) as AsyncIterable<string[]>) {
      for (const refId of refIds) yield* await this.holdsOf(workspace, refId);
    }
  }

  async *all(): AsyncIterable<Hold> {
    for (const workspace of await redisCall(WHAT, () => this.redis.smembers(WORKSPACES))) yield* this.ofWorkspace(workspace);
  }

  async adoptOnce(refs: AsyncIterable<StoredRef>, nowMs: number): Promise<void> {
    if (await redisCall(WHAT, () => this.redis.exists(ADOPTED))) return;
    for await (const stored of refs) await this.add(uploadHoldOf(stored.ref, nowMs));
    await redisCall(WHAT, () => this.redis.set(ADOPTED, String(nowMs)));
  }
}
