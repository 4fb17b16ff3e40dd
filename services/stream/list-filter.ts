import type { StreamInfo } from "../../gen/mentatlab/v1/stream_pb.js";
import type { ListQuery } from "./stream-store.js";

type StreamMatch = Pick<ListQuery, "runId" | "owner" | "states">;

/** Whether a stream passes a list/watch filter; empty filter fields match everything. */
export function matchesList(info: StreamInfo, filter: StreamMatch): boolean {
  if (filter.runId && info.runId !== filter.runId) return false;
  if (filter.owner && info.owner !== filter.owner) return false;
  if (filter.states && filter.states.length > 0 && !filter.states.includes(info.state)) return false;
  return true;
}
