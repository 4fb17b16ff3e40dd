import type { MediaRef } from "../../gen/mentatlab/v1/common_pb.js";
import type { Api } from "./api.js";

/** Objects shown at once: the newest of the workspace (ListMedia pages newest first). */
const shown = 100;

/**
 * The media the user can pick from: the workspace's stored objects, newest first, as ListMedia gives
 * them (uploads from any browser or client, and what runs produced).
 * One object is chosen at a time for "use as input", to be placed in the flow form.
 */
export class MediaLibrary {
  #chosen: MediaRef | undefined;

  choose(ref: MediaRef): void {
    this.#chosen = ref;
  }

  /** The object chosen for "use as input", handed over once. */
  takeChosen(): MediaRef | undefined {
    const chosen = this.#chosen;
    this.#chosen = undefined;
    return chosen;
  }

  /** The workspace's newest objects still stored; expired and deleted ones are not listed. */
  async list(api: Api): Promise<MediaRef[]> {
    return (await api.storage.listMedia({ pageSize: shown })).refs;
  }
}
