import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { MediaRef } from "../../gen/mentatlab/v1/common_pb.js";
import { formatBytes } from "../../services/shared/format-bytes.js";
import type { Api } from "./api.js";
import { byId, el, showError, showStatus } from "./dom.js";
import { uploadFile } from "./upload.js";

/** The upload form, the MediaRef of the last upload and its preview. */
export function initMediaSection(api: () => Api): void {
  const form = byId("upload-form", HTMLFormElement);
  const input = byId("upload-file", HTMLInputElement);
  const temp = byId("upload-temp", HTMLInputElement);
  const progress = byId("upload-progress", HTMLProgressElement);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const file = input.files?.[0];
    if (!file) return;
    const button = form.querySelector("button");
    if (button) button.disabled = true;
    progress.hidden = false;
    progress.value = 0;
    showStatus(`Uploading ${file.name}…`);
    uploadFile(api(), file, temp.checked, (fraction) => (progress.value = Math.round(fraction * 100)))
      .then(async (ref) => {
        showStatus(`Uploaded ${file.name} as ${ref.id}.`);
        await showRef(api(), ref);
      })
      .catch(showError)
      .finally(() => {
        if (button) button.disabled = false;
      });
  });
}

async function showRef(api: Api, ref: MediaRef): Promise<void> {
  const list = byId("media-ref", HTMLDListElement);
  const facts: Array<[string, string]> = [
    ["Id", ref.id],
    ["File name", ref.filename],
    ["Type", ref.mimeType],
    ["Size", `${formatBytes(ref.sizeBytes)} (${ref.sizeBytes} bytes)`],
    ["SHA-256", ref.sha256],
  ];
  const m = ref.metadata;
  if (m && m.width > 0) facts.push(["Dimensions", `${m.width} × ${m.height}`]);
  if (m && m.durationSeconds > 0) facts.push(["Duration", `${m.durationSeconds.toFixed(2)} s`]);
  if (m?.codec) facts.push(["Codec", m.codec]);
  if (ref.expiresAt) facts.push(["Expires", timestampDate(ref.expiresAt).toLocaleString()]);
  list.replaceChildren(...facts.flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]));
  byId("upload-result", HTMLDivElement).hidden = false;
  byId("media-preview", HTMLDivElement).replaceChildren(await previewOf(api, ref));
}

/**
 * A media element for the object. <img>, <audio> and <video> cannot send an Authorization header,
 * so they load a presigned URL; its path is taken relative to this page, so it works behind any
 * proxy or port the server does not know it is reached through.
 */
async function previewOf(api: Api, ref: MediaRef): Promise<HTMLElement> {
  const kind = ref.mimeType.split("/")[0];
  if (kind !== "image" && kind !== "audio" && kind !== "video") return el("p", { class: "hint" }, "No preview for this type.");
  const { url } = await api.storage.presign({ refId: ref.id });
  const signed = new URL(url, location.href);
  const src = `${signed.pathname}${signed.search}`;
  if (kind === "image") return el("img", { src, alt: `Preview of ${ref.filename || ref.id}`, id: "preview-image" });
  return el(kind, { src, controls: "", preload: "metadata", "aria-label": `Preview of ${ref.filename || ref.id}` });
}
