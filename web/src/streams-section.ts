import { Code, ConnectError } from "@connectrpc/connect";
import { PinType } from "../../gen/mentatlab/v1/common_pb.js";
import { StreamState, type StreamInfo } from "../../gen/mentatlab/v1/stream_pb.js";
import { formatBytes } from "../../services/shared/format-bytes.js";
import type { Api } from "./api.js";
import { followDeduplicated, followSequenced } from "../../services/shared/resume.js";
import { announcementKey, subscribeCall } from "../../services/shared/watched-calls.js";
import { byId, el, enumWord, showError, showStatus } from "./dom.js";
import { announcedResume } from "./resume.js";

/**
 * Streams of the workspace, kept live by WatchStreams, and one followed stream: text payloads are
 * shown as they arrive; audio and video are played once the stream completes.
 */
export function initStreamsSection(api: () => Api): { start(signal: AbortSignal): void } {
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
  const live = followDeduplicated((callSignal) => api.stream.watchStreams({}, { signal: callSignal }), announcementKey, announcedResume(() => "the stream list"), signal);
  for await (const { stream } of live) {
    if (stream?.ref) upsertRow(body, stream, follow);
  }
}

function upsertRow(body: HTMLTableSectionElement, info: StreamInfo, follow: (info: StreamInfo) => void): void {
  const id = info.ref?.streamId ?? "";
  const button = el("button", { type: "button", class: "secondary", "aria-label": `Follow stream ${id}` }, "Follow");
  button.addEventListener("click", () => follow(info));
  const producer = info.runId ? `${info.nodeId}.${info.pin} (run ${info.runId})` : info.owner;
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
  const streamId = info.ref?.streamId ?? "";
  const type = info.ref?.payloadType ?? PinType.UNSPECIFIED;
  const isText = type === PinType.TEXT || type === PinType.JSON;
  const textOut = byId("follow-text", HTMLPreElement);
  const media = byId("follow-media", HTMLDivElement);
  byId("follow-name", HTMLElement).textContent = streamId;
  textOut.textContent = "";
  media.replaceChildren();
  const decoder = new TextDecoder();
  // Browsers need the whole recording to play it from a Blob; it is the user's own stream, shown on demand.
  const parts: Uint8Array<ArrayBuffer>[] = [];
  let received = 0;
  let last = 0n;
  let ended = false;
  const events = followSequenced(
    subscribeCall(api.stream, streamId),
    0n,
    announcedResume(() => `stream ${streamId} after event ${last}`),
    signal,
  );
  for await (const event of events) {
    last = event.seq;
    const e = event.event;
    if (e.case === "data") {
      received += e.value.data.byteLength;
      if (isText) textOut.textContent += decoder.decode(e.value.data, { stream: true });
      else {
        parts.push(new Uint8Array(e.value.data));
        textOut.textContent = `${formatBytes(received)} received…`;
      }
    } else if (e.case === "error") {
      // Not a lost connection: the producer failed the stream, so this ends the follow.
      throw new ConnectError(`stream failed: ${e.value.message}`, Code.FailedPrecondition);
    } else if (e.case === "end") {
      ended = true;
    }
  }
  if (!ended) return;
  if (!isText && parts.length > 0) {
    textOut.textContent = `${formatBytes(received)} received; the stream is complete.`;
    const mime = info.ref?.mimeType || "application/octet-stream";
    const url = URL.createObjectURL(new Blob(parts, { type: mime }));
    const kind = mime.startsWith("video/") ? "video" : mime.startsWith("audio/") ? "audio" : undefined;
    media.replaceChildren(
      kind ? el(kind, { src: url, controls: "", "aria-label": `Recording of stream ${streamId}` }) : el("a", { href: url, download: `${streamId}.bin` }, "Download the payload"),
    );
  }
  showStatus(`Stream ${streamId} ended after ${formatBytes(received)}.`);
}
