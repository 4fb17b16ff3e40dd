import { gunzipSync } from "node:zlib";
import type { StreamEvent } from "../../../gen/mentatlab/v1/stream_pb.js";
import { announcedRetry, type CommandContext } from "./context.js";
import { CliError } from "./exit-codes.js";
import { writeOut } from "./io.js";
import { followSequenced } from "../../shared/resume.js";
import { subscribeCall } from "../../shared/watched-calls.js";

export interface FollowResult {
  /** Sequence number of the last event seen: pass it as `--from` to continue later. */
  readonly lastSeq: bigint;
  readonly payloadBytes: number;
}

/**
 * Writes a stream's payload bytes to `out` as they arrive, from after `fromSeq` until stream_end.
 * After a dropped connection it subscribes again after the last event it wrote, so the output has
 * every byte exactly once. stream_error fails the command with the producer's message.
 */
export async function followStream(
  ctx: CommandContext,
  streamId: string,
  fromSeq: bigint,
  out: NodeJS.WritableStream,
  onEvent?: (event: StreamEvent) => Promise<void>,
): Promise<FollowResult> {
  let last = fromSeq;
  let payloadBytes = 0;
  let ended = false;
  const events = followSequenced(
    subscribeCall(ctx.clients.stream, streamId, true),
    fromSeq,
    announcedRetry(ctx, () => `stream ${streamId} after event ${last}`),
  );
  for await (const event of events) {
    const e = event.event;
    if (e.case === "data") {
      const bytes = e.value.contentEncoding === "gzip" ? gunzipSync(e.value.data) : e.value.data;
      await writeOut(out, bytes);
      payloadBytes += bytes.byteLength;
    }
    last = event.seq;
    await onEvent?.(event);
    if (e.case === "error") throw new CliError(`stream ${streamId} failed after event ${event.seq}: [${e.value.code}] ${e.value.message}`);
    if (e.case === "end") ended = true;
  }
  if (!ended) throw new CliError(`stream ${streamId} closed before stream_end; rerun with --from ${last} to continue`);
  return { lastSeq: last, payloadBytes };
}
