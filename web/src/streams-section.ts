import { PinType } from "../../gen/mentatlab/v1/common_pb.js";
import { StreamState, type StreamInfo } from "../../gen/mentatlab/v1/stream_pb.js";
import { formatBytes } from "../../services/shared/format-bytes.js";
import type { Api } from "./api.js";
import { followDeduplicated } from "../../services/shared/resume.js";
import { announcementKey, watchStreamsCall } from "../../services/shared/watched-calls.js";
import { byId, el, enumWord, showError, showStatus } from "./dom.js";
import { playStream } from "./stream-playback.js";
import { announcedResume } from "./resume.js";
import { runLink } from "./router.js";

/**
 * Streams of the workspace, kept live by WatchStreams, and one followed stream: text payloads are
 * shown as they arrive; audio and video play as they arrive when the stream is still open (see
 * live-player.ts), and from the whole recording when it had ended before the follow began or the
 * browser cannot play its type live.
 */
export function initStreamsSection(api: () => Api): { start(signal: AbortSignal): void; follow(streamId: string): void } {
  let following: AbortController | undefined;
  const followOne = (info: StreamInfo) => {
    following?.abort();
    following = new AbortController();
    const signal = following.signal;
    followStream(api(), info, signal).catch((err: unknown) => {
      if (!signal.aborted) showError(err);
    });
  };
  return {
    /** Follows one stream by id, as `#/streams/<id>` links from a run's outputs ask. */
    follow(streamId) {
      api()
        .stream.getStream({ streamId })
        .then(({ stream }) => stream && followOne(stream))
        .catch(showError);
    },
    start(signal) {
      announcements(api(), signal, followOne).catch((err: unknown) => {
        if (!signal.aborted) showError(err);
      });
    },
  };
}

async function announcements(api: Api, signal: AbortSignal, follow: (info: StreamInfo) => void): Promise<void> {
  const body = byId("streams-table", HTMLTableElement).tBodies[0] as HTMLTableSectionElement;
  body.replaceChildren();
  // WatchStreams repeats only the open streams; the list adds the recently ended ones still retained.
  const { streams } = await api.stream.listStreams({ pageSize: 100 }, { signal });
  for (const stream of [...streams].reverse()) if (stream.ref) upsertRow(body, stream, follow);
  const live = followDeduplicated(
    watchStreamsCall(api.stream),
    announcementKey,
    announcedResume(() => "the stream list"),
    signal,
  );
  for await (const { stream } of live) {
    if (stream?.ref) upsertRow(body, stream, follow);
  }
}

function upsertRow(body: HTMLTableSectionElement, info: StreamInfo, follow: (info: StreamInfo) => void): void {
  const id = info.ref?.streamId ?? "";
  const button = el("button", { type: "button", class: "secondary", "aria-label": `Follow stream ${id}` }, "Follow");
  button.addEventListener("click", () => follow(info));
  const producer = info.runId ? el("span", {}, `${info.nodeId}.${info.pin} of run `, runLink(info.runId)) : info.owner;
  const row = el(
    "tr",
    { "data-stream": id },
    el("td", {}, el("code", {}, id)),
    el("td", {}, enumWord(StreamState, info.state)),
    el("td", {}, info.ref?.mimeType || enumWord(PinType, info.ref?.payloadType ?? 0)),
    el("td", {}, producer),
    el("td", {}, button),
  );
  const existing = Array.from(body.rows).find((r) => r.dataset.stream === id);
  if (existing) existing.replaceWith(row);
  else body.prepend(row);
}

async function followStream(api: Api, info: StreamInfo, signal: AbortSignal): Promise<void> {
  const ref = info.ref;
  if (!ref) return;
  const latency = byId("follow-latency", HTMLParagraphElement);
  byId("follow-name", HTMLElement).textContent = ref.streamId;
  latency.textContent = "";
  const targets = { text: byId("follow-text", HTMLPreElement), media: byId("follow-media", HTMLDivElement), onData: latencyReadout(latency, Date.now()) };
  const result = await playStream(api, info, targets, signal);
  if (result.ended) showStatus(`Stream ${ref.streamId} ended after ${formatBytes(result.bytes)}.`);
}

/**
 * "first byte N ms after following · now M ms behind": how long the first payload took, and how old
 * the newest one was when it arrived (the service's store time against this browser's clock, so a
 * skewed clock shifts the second figure).
 */
function latencyReadout(out: HTMLParagraphElement, followedAt: number): (data: Uint8Array, storedAtMs: number) => void {
  let firstByteMs: number | undefined;
  return (_data, storedAtMs) => {
    const now = Date.now();
    firstByteMs ??= now - followedAt;
    const behind = Math.max(0, now - storedAtMs);
    out.textContent = `first byte ${firstByteMs} ms after following · now ${behind} ms behind the producer`;
  };
}
