import type { Redis } from "ioredis";
import { blockingReadMs } from "../shared/redis.js";

/** One entry of a Redis stream: its id and its field/value pairs as raw bytes. */
export interface StreamEntry {
  readonly id: string;
  readonly fields: ReadonlyMap<string, Buffer>;
}

const READ_COUNT = 512;

export function entryOf(id: Buffer | string, flat: readonly Buffer[]): StreamEntry {
  const fields = new Map<string, Buffer>();
  for (let i = 0; i + 1 < flat.length; i += 2) fields.set(String(flat[i]), flat[i + 1] as Buffer);
  return { id: String(id), fields };
}

type XreadReply = [Buffer, [Buffer, Buffer[]][]][] | Record<string, [Buffer, Buffer[]][]> | Map<Buffer | string, [Buffer, Buffer[]][]> | null;

function entriesOf(reply: XreadReply): [Buffer, Buffer[]][] {
  if (reply === null) return [];
  if (Array.isArray(reply)) return reply.flatMap(([, entries]) => entries);
  if (reply instanceof Map) return [...reply.values()].flat();
  return Object.values(reply).flat();
}

/**
 * Follows one Redis stream with XREAD BLOCK on `connection`, its own, from `fromId`, handing each
 * entry to `onEntry` until it returns false or `signal` aborts. Each time a read waits with nothing
 * new, `onIdle` may check that what is followed still exists. Rejects when the connection fails
 * (Redis down, restarted, not answering): callers tell their readers, who resume from the last seq
 * they got, rather than leave them waiting on a read that may never come. The connection is closed
 * when this ends, and at once when `signal` aborts.
 */
export async function followRedisStream(
  connection: Redis,
  key: string,
  fromId: string,
  onEntry: (entry: StreamEntry) => boolean,
  signal: AbortSignal,
  onIdle: () => Promise<void> = async () => undefined,
): Promise<void> {
  const hangUp = (): void => connection.disconnect();
  signal.addEventListener("abort", hangUp, { once: true });
  const blockMs = blockingReadMs(connection);
  let lastId = fromId;
  try {
    while (!signal.aborted) {
      const reply = (await connection.xreadBuffer("COUNT", READ_COUNT, "BLOCK", blockMs, "STREAMS", key, lastId)) as XreadReply;
      if (signal.aborted) return;
      const entries = entriesOf(reply);
      if (entries.length === 0) await onIdle();
      for (const [id, flat] of entries) {
        const entry = entryOf(id, flat);
        lastId = entry.id;
        if (!onEntry(entry)) return;
      }
    }
  } catch (err) {
    if (!signal.aborted) throw err;
  } finally {
    signal.removeEventListener("abort", hangUp);
    connection.disconnect();
  }
}
