import type { MediaRef } from "../../gen/mentatlab/v1/common_pb.js";
import { formatBytes } from "../../services/shared/format-bytes.js";
import type { Api } from "./api.js";
import { byId, describeError, el, showError, showStatus } from "./dom.js";
import type { MediaLibrary } from "./media-library.js";
import { mediaElement } from "./output-preview.js";
import { uploadFile } from "./upload.js";

/** The media page: drop or choose files to upload (a progress bar each), and the library with previews. */
export function initMediaPage(api: () => Api, library: MediaLibrary): { show(): void } {
  const zone = byId("drop-zone", HTMLDivElement);
  const input = byId("upload-file", HTMLInputElement);
  const uploads = byId("upload-list", HTMLUListElement);
  const grid = byId("media-list", HTMLUListElement);

  const refresh = async () => {
    try {
      const refs = await library.list(api());
      grid.replaceChildren(
        ...(refs.length > 0 ? refs.map((ref) => card(api(), library, ref)) : [el("li", { class: "hint" }, "Nothing here yet: upload a file.")]),
      );
    } catch (err) {
      showError(err);
    }
  };
  const uploadAll = async (files: readonly File[]) => {
    const temp = byId("upload-temp", HTMLInputElement).checked;
    // One at a time: each upload already keeps a chunk in flight, and two cores are shared.
    for (const file of files) {
      const bar = el("progress", { max: "100", value: "0", "aria-label": `Upload progress of ${file.name}` });
      const note = el("span", {}, "uploading…");
      uploads.prepend(el("li", {}, el("strong", {}, file.name), " ", bar, " ", note));
      try {
        const ref = await uploadFile(api(), file, temp, (fraction) => (bar.value = Math.round(fraction * 100)));
        bar.value = 100;
        note.textContent = `uploaded as ${ref.id}`;
        showStatus(`Uploaded ${file.name} as ${ref.id}.`);
      } catch (err) {
        note.textContent = `failed: ${describeError(err)}`;
        showError(err);
      }
    }
    await refresh();
  };

  input.addEventListener("change", () => {
    const files = Array.from(input.files ?? []);
    input.value = "";
    void uploadAll(files);
  });
  zone.addEventListener("keydown", (event) => {
    if (event.target === zone && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      input.click();
    }
  });
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    void uploadAll(Array.from(event.dataTransfer?.files ?? []));
  });
  return { show: () => void refresh() };
}

function card(api: Api, library: MediaLibrary, ref: MediaRef): HTMLLIElement {
  const name = ref.filename || ref.id;
  const preview = el("div", { class: "media-preview" });
  mediaElement(api, ref, `Preview of ${name}`).then(
    (element) => preview.replaceChildren(element),
    (err: unknown) => preview.replaceChildren(el("p", { class: "hint" }, `No preview: ${describeError(err)}`)),
  );
  const use = el("button", { type: "button", class: "secondary", "aria-label": `Use ${name} as input` }, "Use as input");
  use.addEventListener("click", () => {
    library.choose(ref);
    location.hash = "#/flows";
  });
  const m = ref.metadata;
  const shape = m && m.width > 0 ? ` · ${m.width} × ${m.height}` : m && m.durationSeconds > 0 ? ` · ${m.durationSeconds.toFixed(2)} s` : "";
  return el(
    "li",
    { "data-ref": ref.id },
    preview,
    el("p", {}, el("strong", {}, name), el("br"), `${ref.mimeType} · ${formatBytes(ref.sizeBytes)}${shape}`, el("br"), el("code", {}, ref.id)),
    use,
  );
}
