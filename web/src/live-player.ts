import { isPcm16, parseWavHeader, type WavLayout } from "../../services/shared/wav.js";
import { el } from "./dom.js";
import { SNIFF_LIMIT, sniffSourceBufferType } from "./media-codecs.js";

/** Plays a media stream while it arrives: `push` each payload in order, `end` once the producer ended it. */
export interface LivePlayer {
  readonly element: HTMLElement;
  push(data: Uint8Array): void;
  end(): void;
  /** True once the browser refused the stream: the caller offers the recording instead. */
  readonly failed: boolean;
  /** Stops playback and frees the decoder, when the user follows another stream. */
  close(): void;
}

/** How far ahead of the audio clock the next PCM buffer is scheduled, to absorb network jitter. */
const PCM_LEAD_SECONDS = 0.15;

const wavTypes = new Set(["audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"]);

/**
 * A player for a stream's MIME type: WAV (16-bit PCM) through Web Audio, anything MediaSource can
 * take (fragmented MP4, WebM with Opus/VP8/VP9…) through a media element. Undefined when the
 * browser cannot play the type live; the caller then offers the recording once the stream ends.
 */
export function livePlayerFor(mimeType: string, label: string): LivePlayer | undefined {
  const base = mimeType.split(";")[0]?.trim().toLowerCase() ?? "";
  if (wavTypes.has(base)) return typeof AudioContext === "function" ? new PcmPlayer(label) : undefined;
  if ((base.startsWith("audio/") || base.startsWith("video/")) && typeof MediaSource === "function")
    return new SourcePlayer(mimeType, base.startsWith("video/"), label);
  return undefined;
}

/** Schedules each chunk's samples back to back on an AudioContext, so playback starts with the first chunk. */
class PcmPlayer implements LivePlayer {
  readonly element: HTMLElement;
  private readonly context = new AudioContext();
  private readonly readout = el("span", { class: "live-position" }, "Waiting for audio…");
  private head = new Uint8Array(0);
  private layout: WavLayout | undefined;
  private leftover = new Uint8Array(0);
  private started = false;
  private nextStart = 0;
  /** Seconds of audio scheduled so far; gaps after an underrun are not audio and do not count. */
  private receivedSeconds = 0;
  failed = false;
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(label: string) {
    const resume = el("button", { type: "button", class: "secondary", hidden: "" }, "Play audio");
    // Browsers keep an AudioContext suspended until the page had a user gesture (a deep link has none).
    resume.addEventListener("click", () => void this.context.resume());
    this.context.addEventListener("statechange", () => (resume.hidden = this.context.state !== "suspended"));
    resume.hidden = this.context.state !== "suspended";
    this.element = el("p", { class: "live-audio", role: "group", "aria-label": label }, this.readout, " ", resume);
    this.timer = setInterval(() => this.showPosition(), 50);
  }

  push(data: Uint8Array): void {
    if (this.failed) return;
    if (this.layout) return this.schedule(data);
    this.head = concat(this.head, data);
    const parsed = parseWavHeader(this.head);
    if (parsed === undefined) return;
    if (parsed instanceof Error || !isPcm16(parsed)) {
      this.failed = true;
      this.readout.textContent = `Cannot play live: ${parsed instanceof Error ? parsed.message : "only 16-bit PCM WAV plays live"}; the recording follows once the stream ends.`;
      return;
    }
    this.layout = parsed;
    this.schedule(this.head.subarray(parsed.dataOffset));
  }

  private schedule(bytes: Uint8Array): void {
    const layout = this.layout;
    if (!layout) return;
    const all = concat(this.leftover, bytes);
    const frameBytes = layout.channels * 2;
    const frames = Math.floor(all.byteLength / frameBytes);
    // A chunk may end mid-frame: keep the partial frame for the next one.
    this.leftover = all.slice(frames * frameBytes);
    if (frames === 0) return;
    const buffer = this.context.createBuffer(layout.channels, frames, layout.sampleRate);
    const view = new DataView(all.buffer, all.byteOffset, frames * frameBytes);
    for (let c = 0; c < layout.channels; c++) {
      const channel = buffer.getChannelData(c);
      for (let i = 0; i < frames; i++) channel[i] = view.getInt16((i * layout.channels + c) * 2, true) / 32768;
    }
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.context.destination);
    // After an underrun, start again just ahead of the clock rather than in the past (which would skip).
    const at = Math.max(this.nextStart, this.context.currentTime + PCM_LEAD_SECONDS);
    source.start(at);
    this.started = true;
    this.nextStart = at + buffer.duration;
    this.receivedSeconds += buffer.duration;
  }

  private showPosition(): void {
    if (!this.started || this.failed) return;
    // What is scheduled but not yet heard is the tail after the audio clock; everything else has played.
    const queued = Math.min(this.receivedSeconds, Math.max(0, this.nextStart - this.context.currentTime));
    const played = this.receivedSeconds - queued;
    const state = this.context.state === "running" ? "Playing live" : "Paused";
    this.readout.textContent = `${state}: ${played.toFixed(2)} s of ${this.receivedSeconds.toFixed(2)} s received`;
  }

  end(): void {
    // Scheduled buffers play out; the readout stops once they have.
    const remainingMs = Math.max(0, this.nextStart - this.context.currentTime) * 1000;
    setTimeout(() => {
      this.showPosition();
      clearInterval(this.timer);
    }, remainingMs + 200);
  }

  close(): void {
    clearInterval(this.timer);
    void this.context.close();
  }
}

/**
 * Media kept behind the playback position: enough to seek back a little, little enough that a long
 * stream never fills the browser's SourceBuffer quota. Older media is removed once it exceeds this by
 * TRIM_STEP_SECONDS, so removals happen every few seconds of playback rather than with every append.
 */
export const KEEP_BEHIND_SECONDS = 30;
export const TRIM_STEP_SECONDS = 10;
/** Kept behind playback when the quota is reached before the regular trim. */
const QUOTA_KEEP_BEHIND_SECONDS = 2;

/**
 * Appends each chunk to a MediaSource buffer in order; the element plays as soon as it has a frame.
 * Media more than KEEP_BEHIND_SECONDS behind the playback position is removed as it plays on.
 */
class SourcePlayer implements LivePlayer {
  readonly element: HTMLMediaElement;
  private readonly source = new MediaSource();
  private readonly url: string;
  private buffer: SourceBuffer | undefined;
  private queue: Uint8Array<ArrayBuffer>[] = [];
  private head = new Uint8Array(0);
  private ended = false;
  failed = false;

  constructor(
    private readonly mimeType: string,
    video: boolean,
    label: string,
  ) {
    // Muted video may autoplay without a user gesture; the controls unmute it.
    this.element = video
      ? el("video", { controls: "", autoplay: "", muted: "", playsinline: "", "aria-label": label })
      : el("audio", { controls: "", autoplay: "", "aria-label": label });
    this.element.muted = video;
    this.url = URL.createObjectURL(this.source);
    this.element.src = this.url;
    this.source.addEventListener("sourceopen", () => this.pump(), { once: true });
  }

  push(data: Uint8Array): void {
    this.queue.push(new Uint8Array(data));
    if (!this.buffer && this.head.byteLength < SNIFF_LIMIT) this.head = concat(this.head, data);
    this.pump();
  }

  end(): void {
    this.ended = true;
    this.pump();
  }

  close(): void {
    this.element.pause();
    this.element.removeAttribute("src");
    URL.revokeObjectURL(this.url);
  }

  private pump(): void {
    if (this.failed || this.source.readyState !== "open") return;
    if (!this.buffer && !this.openBuffer()) return;
    const buffer = this.buffer;
    if (!buffer || buffer.updating) return;
    // A removal runs first; its updateend pumps again.
    if (this.trimmed(buffer, KEEP_BEHIND_SECONDS, TRIM_STEP_SECONDS)) return;
    if (this.queue.length > 0) {
      // Everything that arrived while the last append ran goes in one append.
      const next = concatAll(this.queue);
      this.queue = [];
      try {
        buffer.appendBuffer(next);
      } catch (err) {
        if (!(err instanceof DOMException && err.name === "QuotaExceededError")) throw err;
        // Full before the regular trim came round (a high bitrate): keep only a few seconds behind, then retry.
        this.queue.unshift(next);
        if (!this.trimmed(buffer, QUOTA_KEEP_BEHIND_SECONDS, 0)) this.fail("the browser's media buffer is full");
      }
    } else if (this.ended) this.source.endOfStream();
  }

  /** Starts removing what is more than `keep` seconds behind playback once that is over `slack` seconds; true if it did. */
  private trimmed(buffer: SourceBuffer, keep: number, slack: number): boolean {
    const ranges = buffer.buffered;
    if (ranges.length === 0) return false;
    const start = ranges.start(0);
    const keepFrom = this.element.currentTime - keep;
    if (keepFrom - start <= slack) return false;
    buffer.remove(start, keepFrom);
    return true;
  }

  private openBuffer(): boolean {
    const type = sniffSourceBufferType(this.mimeType, this.head);
    if (type === undefined) return false;
    if (type === "" || !MediaSource.isTypeSupported(type)) {
      this.fail(`this browser cannot play ${type || this.mimeType} live`);
      return false;
    }
    this.buffer = this.source.addSourceBuffer(type);
    this.buffer.addEventListener("updateend", () => this.pump());
    this.buffer.addEventListener("error", () => this.fail("the browser could not decode the stream"));
    this.head = new Uint8Array(0);
    return true;
  }

  private fail(reason: string): void {
    this.failed = true;
    this.element.replaceWith(el("p", { class: "live-audio" }, `Cannot play live: ${reason}; the recording follows once the stream ends.`));
    this.queue = [];
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  return concatAll([a, b]);
}

function concatAll(parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}
