import type { StreamInfo } from "../../gen/mentatlab/v1/stream_pb.js";
import { StreamState } from "../../gen/mentatlab/v1/stream_pb.js";
import { formatBytes } from "../../services/shared/format-bytes.js";
import type { Api } from "./api.js";
import { el } from "./dom.js";
import { livePlayerFor } from "./live-player.js";
import { replayStream, type ReplayResult } from "./stream-replay.js";

/** A Blob (an ended stream's payload) as a player, or a download link when it is not audio or video. */
export function recordingElement(recording: Blob, label: string, filename: string): HTMLElement {
  const url = URL.createObjectURL(recording);
  const kind = recording.type.startsWith("video/") ? "video" : recording.type.startsWith("audio/") ? "audio" : undefined;
  return kind ? el(kind, { src: url, controls: "", "aria-label": label }) : el("a", { href: url, download: filename }, "Download the payload");
}

/** Where a stream is shown: its text (or a byte count), and its player. */
export interface PlaybackTargets {
  readonly text: HTMLElement;
  readonly media: HTMLElement;
  /** Every payload as it arrives, with when the stream service stored it (epoch ms). */
  readonly onData?: (data: Uint8Array, storedAtMs: number) => void;
}

/**
 * Plays one stream, for the streams page and a run's **Show stream** alike: text as it arrives; audio
 * and video live while the stream is open (live-player.ts), or, when it had ended before or the browser
 * cannot play its type live, as the whole recording once it ends.
 */
export async function playStream(api: Api, info: StreamInfo, targets: PlaybackTargets, signal: AbortSignal): Promise<ReplayResult> {
  const ref = info.ref;
  if (!ref) return { ended: false, bytes: 0 };
  const { text, media } = targets;
  text.textContent = "";
  media.replaceChildren();
  const player = info.state === StreamState.OPEN ? livePlayerFor(ref.mimeType, `Live stream ${ref.streamId}`) : undefined;
  if (player) {
    media.append(player.element);
    signal.addEventListener("abort", () => player.close(), { once: true });
  }
  const result = await replayStream(api, ref, signal, {
    onText: (chunk) => (text.textContent += chunk),
    onBytes: (total) => (text.textContent = `${formatBytes(total)} received…`),
    onData: (data, storedAtMs) => {
      targets.onData?.(data, storedAtMs);
      player?.push(data);
    },
  });
  if (!result.ended) return result;
  player?.end();
  if (result.recording) {
    text.textContent = `${formatBytes(result.bytes)} received; the stream is complete.`;
    const playedLive = player !== undefined && !player.failed;
    if (!playedLive) media.replaceChildren(recordingElement(result.recording, `Recording of stream ${ref.streamId}`, `${ref.streamId}.bin`));
  } else if (result.bytes === 0) text.textContent = "The stream ended empty.";
  return result;
}
