import { toJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import type { MediaRef, PinValue, StreamRef } from "../../gen/mentatlab/v1/common_pb.js";
import { formatBytes } from "../../services/shared/format-bytes.js";
import type { Api } from "./api.js";
import { describeError, el } from "./dom.js";
import { playStream, recordingElement } from "./stream-playback.js";

/**
 * The media route URL for an object. <img>, <audio> and <video> cannot send an Authorization header,
 * so they load a presigned URL; its path is taken relative to this page, so it works behind any
 * proxy or port the server does not know it is reached through.
 */
export async function mediaSrc(api: Api, ref: MediaRef): Promise<string> {
  const { url } = await api.storage.presign({ refId: ref.id });
  const signed = new URL(url, location.href);
  return `${signed.pathname}${signed.search}`;
}

/** A player or image for a media object; a download link for any other type. */
export async function mediaElement(api: Api, ref: MediaRef, label: string): Promise<HTMLElement> {
  const kind = ref.mimeType.split("/")[0];
  const src = await mediaSrc(api, ref);
  if (kind === "image") return el("img", { src, alt: label });
  if (kind === "audio" || kind === "video") return el(kind, { src, controls: "", preload: "metadata", "aria-label": label });
  return el("a", { href: src, download: ref.filename || ref.id }, `Download ${ref.filename || ref.id}`);
}

/** One line saying what a pin value is: its type, size and shape. */
export function describePinValue(value: PinValue): string {
  const v = value.value;
  if (v.case === "text") return `text, ${v.value.length} characters`;
  if (v.case === "json") return "JSON";
  if (v.case === "media") {
    const m = v.value.metadata;
    const shape = m && m.width > 0 ? `, ${m.width} × ${m.height}` : m && m.durationSeconds > 0 ? `, ${m.durationSeconds.toFixed(2)} s` : "";
    return `${v.value.mimeType}, ${formatBytes(v.value.sizeBytes)}${shape}`;
  }
  if (v.case === "stream") return `stream ${v.value.streamId} (${v.value.mimeType || "no MIME type"})`;
  if (v.case === "inlineBytes") return `binary, ${formatBytes(v.value.byteLength)}`;
  return "empty";
}

/** An output shown by its type: text as text, JSON pretty-printed, media shown or playable, streams replayed on demand. */
export async function previewPinValue(api: Api, pin: string, value: PinValue): Promise<HTMLElement> {
  const v = value.value;
  const figure = el("figure", { class: "output", "data-pin": pin, "data-kind": v.case ?? "empty" });
  const caption = el("figcaption", {}, el("strong", {}, pin), ` — ${describePinValue(value)}`);
  figure.append(caption);
  if (v.case === "text") figure.append(el("pre", { class: "output-text" }, v.value));
  else if (v.case === "json") figure.append(el("pre", { class: "output-json" }, JSON.stringify(toJson(ValueSchema, v.value), null, 2)));
  else if (v.case === "media") {
    try {
      figure.append(await mediaElement(api, v.value, `Output ${pin}`));
    } catch (err) {
      figure.append(el("p", { class: "hint" }, `No preview: ${describeError(err)}`));
    }
  } else if (v.case === "stream") figure.append(streamReplayer(api, v.value, pin));
  else if (v.case === "inlineBytes") figure.append(recordingElement(new Blob([new Uint8Array(v.value)]), `Output ${pin}`, `${pin}.bin`));
  return figure;
}

/** A stream output: a link to the streams page, and a button that plays the stream, live while it is produced. */
function streamReplayer(api: Api, ref: StreamRef, pin: string): HTMLElement {
  const shown = el("pre", { class: "output-stream", "aria-live": "polite" });
  const media = el("div", { class: "output-stream-media" });
  const button = el("button", { type: "button", class: "secondary" }, "Show stream");
  button.setAttribute("aria-label", `Show stream of ${pin}`);
  let playing: AbortController | undefined;
  button.addEventListener("click", () => {
    playing?.abort();
    const done = new AbortController();
    playing = done;
    button.disabled = true;
    api.stream
      .getStream({ streamId: ref.streamId }, { signal: done.signal })
      .then(({ stream }) => (stream ? playStream(api, stream, { text: shown, media }, done.signal) : undefined))
      .catch((err: unknown) => {
        if (!done.signal.aborted) shown.textContent = `Could not replay: ${describeError(err)}`;
      })
      .finally(() => (button.disabled = false));
  });
  return el(
    "div",
    {},
    el("p", {}, el("code", {}, ref.streamId), " · ", el("a", { href: `#/streams/${encodeURIComponent(ref.streamId)}` }, "on the streams page")),
    button,
    shown,
    media,
  );
}
