import type { WatchStreamsResponse } from "../../gen/mentatlab/v1/stream_pb.js";

/**
 * What makes a WatchStreams announcement the same one again: each stream becomes available once and
 * ends once, and a reopened WatchStreams repeats every stream still open.
 */
export function announcementKey(announcement: WatchStreamsResponse): string {
  return `${announcement.kind}:${announcement.stream?.ref?.streamId ?? ""}`;
}
