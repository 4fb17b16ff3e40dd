import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import { storeUnavailable } from "./errors.js";

/**
 * A Lua script run by SHA, falling back to sending its source when the server does not know it
 * (first use, or after a Redis restart emptied the script cache).
 */
export class LuaScript {
  private readonly sha: string;

  constructor(
    private readonly source: string,
    private readonly keyCount: number,
  ) {
    this.sha = createHash("sha1").update(source).digest("hex");
  }

  async run(redis: Redis, keys: readonly string[], args: readonly (string | number | Uint8Array)[]): Promise<unknown[]> {
    if (keys.length !== this.keyCount) throw new Error(`script expects ${this.keyCount} keys, got ${keys.length}`);
    const argv = args.map((a) => (a instanceof Uint8Array ? Buffer.from(a.buffer, a.byteOffset, a.byteLength) : a));
    try {
      return (await redis.evalsha(this.sha, this.keyCount, ...keys, ...argv)) as unknown[];
    } catch (err) {
      if (!String(err).includes("NOSCRIPT")) storeUnavailable(err);
      return (await redis.eval(this.source, this.keyCount, ...keys, ...argv).catch(storeUnavailable)) as unknown[];
    }
  }
}

// Sequence numbers are entry ids `<seq>-0`: a subscriber resumes with XRANGE/XREAD from `<after>-0`,
// and a trimmed gap shows as a first entry whose id is not after+1. Counters are formatted with %d
// because Lua prints large numbers in exponent notation.

/**
 * Creates a stream: refuses when the owner is at the open-stream limit, stores the description and
 * stream_start as seq 1, indexes it and announces it, all atomically so concurrent replicas agree.
 * A Redis that holds no data-since mark (it restarted empty) gets one no later than its first stream.
 * KEYS: meta, events, owner's open set, open-by-deadline zset, workspace index, announcements, data-since.
 * ARGV: id, info, deadline ms, max open, start event, time ms, maxlen, open member, announce maxlen,
 * workspace, announcement.
 */
export const createScript = new LuaScript(
  `
if redis.call('EXISTS', KEYS[1]) == 1 then return {'exists'} end
if redis.call('SCARD', KEYS[3]) >= tonumber(ARGV[4]) then return {'limit'} end
redis.call('HSET', KEYS[1], 'info', ARGV[2], 'state', 1, 'seq', 1, 'cseq', 0, 'bytes', 0, 'deadline', ARGV[3])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], '1-0', 't', ARGV[6], 'e', ARGV[5])
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[8])
redis.call('ZADD', KEYS[5], 0, ARGV[1])
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[9], '*', 'w', ARGV[10], 'a', ARGV[11])
redis.call('SET', KEYS[7], ARGV[6], 'NX')
return {'ok'}
`,
  7,
);

/**
 * Appends payloads as stream_data events: drops those whose client seq is at or below the stored one,
 * assigns the next seqs and stores the counters in one step, so retries and replicas never duplicate
 * or skip a seq. Each entry keeps its payload offset (`o`, payload bytes before it) beside the event.
 * Replies with the counters, the payload bytes before the first stored payload, and the indexes of the
 * payloads it stored.
 * KEYS: meta, events. ARGV: time ms, maxlen, count, then per payload: client seq, size, event.
 */
export const appendScript = new LuaScript(
  `
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing'} end
if state ~= '1' then return {'ended', state} end
local deadline = tonumber(redis.call('HGET', KEYS[1], 'deadline'))
if tonumber(ARGV[1]) >= deadline then return {'overdue', string.format('%d', deadline)} end
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq'))
local cseq = tonumber(redis.call('HGET', KEYS[1], 'cseq'))
local bytes = tonumber(redis.call('HGET', KEYS[1], 'bytes'))
local startBytes = bytes
local appended = 0
local appendedBytes = 0
local stored = {}
for i = 0, tonumber(ARGV[3]) - 1 do
  local c = tonumber(ARGV[4 + i * 3])
  if c == 0 or c > cseq then
    seq = seq + 1
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], string.format('%d-0', seq), 't', ARGV[1], 'o', string.format('%d', bytes), 'e', ARGV[6 + i * 3])
    if c > 0 then cseq = c end
    local size = tonumber(ARGV[5 + i * 3])
    bytes = bytes + size
    appended = appended + 1
    appendedBytes = appendedBytes + size
    stored[appended] = i
  end
end
redis.call('HSET', KEYS[1], 'seq', string.format('%d', seq), 'cseq', string.format('%d', cseq), 'bytes', string.format('%d', bytes))
return {'ok', string.format('%d', seq), string.format('%d', cseq), appended, appendedBytes, string.format('%d', startBytes), unpack(stored)}
`,
  2,
);

/**
 * Ends a stream with a prepared stream_end/stream_error event, if its last seq is still the one the
 * event was built for (otherwise 'conflict' and the caller rebuilds it), then lets its keys expire and
 * announces the end.
 * KEYS: meta, events, owner's open set, open-by-deadline zset, announcements.
 * ARGV: expected last seq, new state, time ms, event, ttl ms, open member, id, maxlen, announce maxlen,
 * workspace, announcement.
 */
export const endScript = new LuaScript(
  `
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing'} end
if state ~= '1' then return {'ended', state} end
if redis.call('HGET', KEYS[1], 'seq') ~= ARGV[1] then return {'conflict'} end
local seq = tonumber(ARGV[1]) + 1
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[8], string.format('%d-0', seq), 't', ARGV[3], 'e', ARGV[4])
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'seq', string.format('%d', seq), 'ended', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('SREM', KEYS[3], ARGV[7])
redis.call('ZREM', KEYS[4], ARGV[6])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[9], '*', 'w', ARGV[10], 'a', ARGV[11])
return {'ok'}
`,
  5,
);

/**
 * Records a declared consumer's subscription beginning or ending, or its progress, in the stream's
 * consumer hash (fields `a:`, `d:`, `s:`, `b:` + node id: subscriptions attached, detached since,
 * seq and bytes reached). Progress only moves forward. The hash outlives the stream by its TTL.
 * KEYS: consumers. ARGV: op (attach, detach, advance), node id, ttl ms, then time ms (attach/detach)
 * or seq and bytes (advance).
 */
export const consumerScript = new LuaScript(
  `
local node = ARGV[2]
if ARGV[1] == 'attach' then
  redis.call('HINCRBY', KEYS[1], 'a:' .. node, 1)
  redis.call('HSET', KEYS[1], 'd:' .. node, 0)
elseif ARGV[1] == 'detach' then
  if redis.call('HINCRBY', KEYS[1], 'a:' .. node, -1) <= 0 then
    redis.call('HSET', KEYS[1], 'a:' .. node, 0, 'd:' .. node, ARGV[4])
  end
else
  local reached = tonumber(redis.call('HGET', KEYS[1], 's:' .. node) or '0')
  if tonumber(ARGV[4]) > reached then redis.call('HSET', KEYS[1], 's:' .. node, ARGV[4], 'b:' .. node, ARGV[5]) end
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {'ok'}
`,
  1,
);

/**
 * Trims events stored before a cutoff, keeping the newest. Entries are in time order, so a binary
 * search over seqs finds the first one to keep in O(log n) single-entry reads, instead of loading
 * (possibly 64 KiB) entries one by one.
 * KEYS: events. ARGV: cutoff ms.
 */
export const trimScript = new LuaScript(
  `
local cutoff = tonumber(ARGV[1])
local function seqOf(id) return tonumber(string.match(id, '^(%d+)')) end
local function timeOf(entry) return tonumber(entry[2][2]) end
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if #first == 0 or timeOf(first[1]) >= cutoff then return 0 end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if timeOf(last[1]) < cutoff then
  redis.call('XTRIM', KEYS[1], 'MINID', last[1][1])
  return 1
end
-- The entry at lo is older than the cutoff; the first entry at or after hi is not.
local lo = seqOf(first[1][1])
local hi = seqOf(last[1][1])
while hi - lo > 1 do
  local mid = math.floor((lo + hi) / 2)
  local entry = redis.call('XRANGE', KEYS[1], string.format('%d-0', mid), '+', 'COUNT', 1)[1]
  local seq = seqOf(entry[1])
  if seq >= hi then
    hi = mid
  elseif timeOf(entry) < cutoff then
    lo = seq
  else
    hi = seq
  end
end
redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d-0', hi))
return 1
`,
  1,
);
