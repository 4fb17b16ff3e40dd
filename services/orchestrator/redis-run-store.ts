import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { Redis } from "ioredis";
import {
  type NodeRun,
  NodeRunSchema,
  type ReportNodeEventsRequest,
  ReportNodeEventsRequestSchema,
  type Run,
  type RunEvent,
  RunEventSchema,
  RunSchema,
  type RunState,
} from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { dedicatedConnection, redisUnavailable } from "../shared/redis.js";
import { isFinalRunState, type RunPage, type RunStore } from "./run-store.js";
import { RunStoreListeners } from "./run-store-listeners.js";

const unavailable = redisUnavailable("the run store");

/** How long a SubmitFlow request_id keeps answering with its run. */
const idempotencyTtlSeconds = 24 * 3600;

const createScript = `
if ARGV[3] == "1" then
  local existing = redis.call("GET", KEYS[1])
  if existing then return existing end
  redis.call("SET", KEYS[1], ARGV[1], "EX", ARGV[4])
end
redis.call("SET", KEYS[2], ARGV[2])
for i = 5, #ARGV do redis.call("RPUSH", KEYS[3], ARGV[i]) end
redis.call("ZADD", KEYS[4], 0, ARGV[1])
redis.call("SADD", KEYS[5], ARGV[1])
return false`;

// Fenced write: only the lease holder appends, and only right after the last stored seq.
const appendScript = `
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call("LLEN", KEYS[2]) ~= tonumber(ARGV[2]) - 1 then return 0 end
for i = 7, #ARGV do redis.call("RPUSH", KEYS[2], ARGV[i]) end
redis.call("SET", KEYS[3], ARGV[5])
if ARGV[3] == "1" then
  redis.call("SREM", KEYS[4], ARGV[4])
  redis.call("EXPIRE", KEYS[2], ARGV[6])
  redis.call("EXPIRE", KEYS[3], ARGV[6])
  redis.call("EXPIRE", KEYS[5], ARGV[6])
end
return 1`;

const acquireScript = `
if redis.call("EXISTS", KEYS[2]) == 0 then return 0 end
local holder = redis.call("GET", KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
  return 1
end
return 0`;

const releaseScript = `
if redis.call("GET", KEYS[1]) == ARGV[1] then redis.call("DEL", KEYS[1]) end
return 0`;

/**
 * Runs in Redis, shared by every orchestrator replica: a protobuf snapshot and an event list per run,
 * written together by Lua scripts fenced by the run's lease; a lexically ordered index per workspace
 * (run ids sort by time); a set of unfinished runs for recovery; pub/sub on one channel per kind so
 * each process keeps a single subscriber connection and fans out in memory.
 */
export class RedisRunStore implements RunStore {
  private readonly listeners = new RunStoreListeners();
  private readonly eventsChannel: string;
  private readonly cancelChannel: string;
  private readonly reportChannel: string;

  private constructor(
    private readonly redis: Redis,
    private readonly subscriber: Redis,
    private readonly prefix: string,
    private readonly finishedRunTtlSeconds: number,
  ) {
    this.eventsChannel = `${prefix}run-events`;
    this.cancelChannel = `${prefix}run-cancels`;
    this.reportChannel = `${prefix}run-reports`;
  }

  /**
   * Uses `redis` for commands and a duplicate of it for subscriptions; close() quits only the duplicate.
   * A finished run (snapshot and events) expires `finishedRunTtlSeconds` after its final event.
   */
  static async connect(redis: Redis, prefix: string, finishedRunTtlSeconds = 7 * 24 * 3600): Promise<RedisRunStore> {
    const subscriber = await dedicatedConnection(redis).catch(unavailable);
    const store = new RedisRunStore(redis, subscriber, prefix, Math.max(1, Math.ceil(finishedRunTtlSeconds)));
    subscriber.on("message", (channel: string, message: string) => store.dispatch(channel, message));
    // Notifications sent while the subscription was down are gone: watchers read the store at once,
    // which fails (UNAVAILABLE) while Redis is away and catches up once it is back.
    subscriber.on("close", () => store.listeners.wakeAllWatchers());
    subscriber.on("ready", () => store.listeners.wakeAllWatchers());
    await subscriber.subscribe(store.eventsChannel, store.cancelChannel, store.reportChannel).catch(unavailable);
    return store;
  }

  async create(run: Run, events: RunEvent[], idempotencyKey: string): Promise<{ run: Run; created: boolean }> {
    const existing = (await this.redis
      .eval(
        createScript,
        5,
        this.key(`idem:${run.workspace}:${idempotencyKey}`),
        this.runKey(run.runId),
        this.eventsKey(run.runId),
        this.workspaceKey(run.workspace),
        this.key("runs:unfinished"),
        run.runId,
        Buffer.from(toBinary(RunSchema, run)),
        idempotencyKey ? "1" : "0",
        idempotencyTtlSeconds,
        ...events.map((e) => Buffer.from(toBinary(RunEventSchema, e))),
      )
      .catch(unavailable)) as string | null;
    if (existing) {
      const stored = await this.get(existing);
      if (stored) return { run: stored, created: false };
    }
    return { run, created: true };
  }

  async get(runId: string): Promise<Run | undefined> {
    const bytes = await this.redis.getBuffer(this.runKey(runId)).catch(unavailable);
    return bytes ? fromBinary(RunSchema, bytes) : undefined;
  }

  async list(workspace: string, states: readonly RunState[], pageSize: number, after: string): Promise<RunPage> {
    const runs: Run[] = [];
    let cursor = after ? `(${after}` : "+";
    for (;;) {
      const ids = await this.redis.zrange(this.workspaceKey(workspace), cursor, "-", "BYLEX", "REV", "LIMIT", 0, Math.max(pageSize * 2, 50)).catch(unavailable);
      if (ids.length === 0) return { runs, nextAfter: "" };
      const snapshots = await this.redis.mgetBuffer(...ids.map((id) => this.runKey(id))).catch(unavailable);
      const expired = ids.filter((_, i) => !snapshots[i]);
      if (expired.length > 0) await this.redis.zrem(this.workspaceKey(workspace), ...expired).catch(unavailable);
      for (const bytes of snapshots) {
        if (!bytes) continue;
        const run = fromBinary(RunSchema, bytes);
        if (states.length > 0 && !states.includes(run.state)) continue;
        if (runs.length === pageSize) return { runs, nextAfter: runs.at(-1)?.runId ?? "" };
        runs.push(run);
      }
      cursor = `(${ids.at(-1)}`;
    }
  }

  async append(runId: string, owner: string, events: readonly RunEvent[], snapshot: Run): Promise<boolean> {
    const first = events[0];
    if (!first) return true;
    // Serialised before any await: the snapshot belongs to exactly these events even if the caller moves on.
    const snapshotBytes = Buffer.from(toBinary(RunSchema, snapshot));
    const eventBytes = events.map((e) => Buffer.from(toBinary(RunEventSchema, e)));
    const ok = await this.redis
      .eval(
        appendScript,
        5,
        this.leaseKey(runId),
        this.eventsKey(runId),
        this.runKey(runId),
        this.key("runs:unfinished"),
        this.key(`run:${runId}:cancel`),
        owner,
        first.seq.toString(),
        isFinalRunState(snapshot.state) ? "1" : "0",
        runId,
        snapshotBytes,
        this.finishedRunTtlSeconds,
        ...eventBytes,
      )
      .catch(unavailable);
    if (ok !== 1) return false;
    await this.redis.publish(this.eventsChannel, runId).catch(unavailable);
    return true;
  }

  async events(runId: string, afterSeq: bigint, limit: number): Promise<RunEvent[]> {
    const start = Number(afterSeq);
    const items = await this.redis.lrangeBuffer(this.eventsKey(runId), start, start + limit - 1).catch(unavailable);
    return items.map((bytes) => fromBinary(RunEventSchema, bytes));
  }

  watch(runId: string, listener: () => void): () => void {
    return this.listeners.watch(runId, listener);
  }

  async acquireLease(runId: string, owner: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.eval(acquireScript, 2, this.leaseKey(runId), this.runKey(runId), owner, Math.ceil(ttlMs)).catch(unavailable)) === 1;
  }

  async releaseLease(runId: string, owner: string): Promise<void> {
    await this.redis.eval(releaseScript, 1, this.leaseKey(runId), owner).catch(unavailable);
  }

  async requestCancel(runId: string, reason: string): Promise<void> {
    await this.redis.set(this.key(`run:${runId}:cancel`), reason, "NX").catch(unavailable);
    await this.redis.publish(this.cancelChannel, runId).catch(unavailable);
  }

  async cancelRequest(runId: string): Promise<string | undefined> {
    return (await this.redis.get(this.key(`run:${runId}:cancel`)).catch(unavailable)) ?? undefined;
  }

  onCancelRequested(listener: (runId: string) => void): () => void {
    return this.listeners.onCancelRequested(listener);
  }

  async forwardReport(report: ReportNodeEventsRequest): Promise<void> {
    await this.redis.publish(this.reportChannel, Buffer.from(toBinary(ReportNodeEventsRequestSchema, report)).toString("base64")).catch(unavailable);
  }

  onReport(listener: (report: ReportNodeEventsRequest) => void): () => void {
    return this.listeners.onReport(listener);
  }

  async cacheGet(workspace: string, key: string): Promise<NodeRun | undefined> {
    const bytes = await this.redis.getBuffer(this.cacheKey(workspace, key)).catch(unavailable);
    return bytes ? fromBinary(NodeRunSchema, bytes) : undefined;
  }

  async cachePut(workspace: string, key: string, entry: NodeRun, ttlMs: number): Promise<void> {
    // Redis expires the entry itself, on every replica at once.
    await this.redis.set(this.cacheKey(workspace, key), Buffer.from(toBinary(NodeRunSchema, entry)), "PX", Math.max(1, Math.ceil(ttlMs))).catch(unavailable);
  }

  async unfinished(): Promise<string[]> {
    return this.redis.smembers(this.key("runs:unfinished")).catch(unavailable);
  }

  async close(): Promise<void> {
    this.listeners.clear();
    await this.subscriber.quit().catch(() => undefined);
  }

  private dispatch(channel: string, message: string): void {
    if (channel === this.eventsChannel) this.listeners.eventsAppended(message);
    else if (channel === this.cancelChannel) this.listeners.cancelRequested(message);
    else if (channel === this.reportChannel) this.listeners.reported(fromBinary(ReportNodeEventsRequestSchema, Buffer.from(message, "base64")));
  }

  private key(suffix: string): string {
    return `${this.prefix}${suffix}`;
  }
  private runKey(runId: string): string {
    return this.key(`run:${runId}`);
  }
  private eventsKey(runId: string): string {
    return this.key(`run:${runId}:events`);
  }
  private leaseKey(runId: string): string {
    return this.key(`run:${runId}:lease`);
  }
  private cacheKey(workspace: string, key: string): string {
    return this.key(`cache:${workspace}:${key}`);
  }
  private workspaceKey(workspace: string): string {
    return this.key(`runs:ws:${workspace}`);
  }
}
