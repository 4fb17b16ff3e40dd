import { setTimeout as sleep } from "node:timers/promises";
import type { Redis } from "ioredis";

/** One entry of a Redis stream: its id and its field/value pairs as raw bytes. */
export interface StreamEntry {
  readonly id: string;
  readonly fields: ReadonlyMap<string, Buffer>;
}

const BLOCK_MS = 5_000;
const READ_COUNT = 512;
const RETRY_DELAY_MS = 100;

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
 * Follows one Redis stream with XREAD BLOCK on its own connection from `fromId`, handing each entry to
 * `onEntry` until it returns false or `signal` aborts. Survives reconnects: it always resumes after the
 * last id it handed out, so a Redis restart loses nothing that Redis kept.
 */
export async function followRedisStream(
  connection: Redis,
  key: string,
  fromId: string,
  onEntry: (entry: StreamEntry) => boolean,
  signal: AbortSignal,
): Promise<void> {
  let lastId = fromId;
  while (!signal.aborted) {
    let reply: XreadReply;
    try {
      reply = (await connection.xreadBuffer("COUNT", READ_COUNT, "BLOCK", BLOCK_MS, "STREAMS", key, lastId)) as XreadReply;
    } catch {
      if (signal.aborted) return;
      await sleep(RETRY_DELAY_MS);
      continue;
    }
    for (const [id, flat] of entriesOf(reply)) {
      const entry = entryOf(id, flat);
      lastId = entry.id;
      if (!onEntry(entry)) return;
    }
  }
}
