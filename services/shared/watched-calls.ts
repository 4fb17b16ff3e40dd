import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Client } from "@connectrpc/connect";
import { RunState, type OrchestratorService, type RunEvent } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import type { StreamEvent, StreamFilterSchema, StreamService, WatchStreamsResponse } from "../../gen/mentatlab/v1/stream_pb.js";
import type { SequencedStream } from "./resume.js";

/** Subscribe as a resumable sequenced stream: it ends with stream_end or stream_error. */
export function subscribeCall(client: Client<typeof StreamService>, streamId: string, acceptGzip = false): SequencedStream<StreamEvent> {
  return {
    open: (afterSeq, signal) => client.subscribe({ streamId, afterSeq, acceptGzip }, { signal }),
    seqOf: (event) => event.seq,
    isLast: (event) => event.event.case === "end" || event.event.case === "error",
  };
}

export const finalRunStates: ReadonlySet<RunState> = new Set([RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED]);

/** WatchRun as a resumable sequenced stream: it ends with the run's final state. */
export function watchRunCall(client: Client<typeof OrchestratorService>, runId: string): SequencedStream<RunEvent> {
  return {
    open: (afterSeq, signal) => client.watchRun({ runId, afterSeq }, { signal }),
    seqOf: (event) => event.seq,
    isLast: (event) => event.event.case === "runState" && finalRunStates.has(event.event.value.state),
  };
}

/** WatchStreams for `followDeduplicated`: a reopened call also announces the streams that ended since. */
export function watchStreamsCall(
  client: Client<typeof StreamService>,
  filter: MessageInitShape<typeof StreamFilterSchema> = {},
): (signal: AbortSignal | undefined, since: Date | undefined) => AsyncIterable<WatchStreamsResponse> {
  return (signal, since) => client.watchStreams({ filter, ...(since ? { endedAfter: timestampFromDate(since) } : {}) }, { signal });
}

/**
 * What makes a WatchStreams announcement the same one again: each stream becomes available once and
 * ends once, and a reopened WatchStreams repeats every stream still open.
 */
export function announcementKey(announcement: WatchStreamsResponse): string {
  return `${announcement.kind}:${announcement.stream?.ref?.streamId ?? ""}`;
}
