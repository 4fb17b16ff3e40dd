import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { MediaRef, PinValue } from "../../gen/mentatlab/v1/common_pb.js";
import type { Api } from "./api.js";

const storageKey = "mentatlab.uploadedRefs";
const runsScanned = 50;

/**
 * The media the user can pick from: what this browser uploaded (ids kept in localStorage, since
 * StorageService has no listing call) and the media the workspace's recent runs produced (ListRuns
 * leaves run inputs out).
 * One object is chosen at a time for "use as input", to be placed in the flow form.
 */
export class MediaLibrary {
  #chosen: MediaRef | undefined;

  remember(ref: MediaRef): void {
    const ids = this.#uploadedIds().filter((id) => id !== ref.id);
    localStorage.setItem(storageKey, JSON.stringify([ref.id, ...ids]));
  }

  choose(ref: MediaRef): void {
    this.#chosen = ref;
  }

  /** The object chosen for "use as input", handed over once. */
  takeChosen(): MediaRef | undefined {
    const chosen = this.#chosen;
    this.#chosen = undefined;
    return chosen;
  }

  /** Every known object still stored, newest first. Uploads that expired or were deleted are forgotten. */
  async list(api: Api): Promise<MediaRef[]> {
    const found = new Map<string, MediaRef>();
    const uploaded = await Promise.all(this.#uploadedIds().map((id) => statOrGone(api, id)));
    const gone = new Set(this.#uploadedIds().filter((_, index) => uploaded[index] === undefined));
    if (gone.size > 0) localStorage.setItem(storageKey, JSON.stringify(this.#uploadedIds().filter((id) => !gone.has(id))));
    for (const ref of uploaded) if (ref) found.set(ref.id, ref);
    const { runs } = await api.orchestrator.listRuns({ pageSize: runsScanned });
    for (const run of runs) {
      const values = [...Object.values(run.outputs), ...run.nodes.flatMap((node) => Object.values(node.outputs))];
      for (const ref of values.map(mediaOf)) if (ref && !found.has(ref.id)) found.set(ref.id, ref);
    }
    return Array.from(found.values()).sort((a, b) => createdMs(b) - createdMs(a));
  }

  #uploadedIds(): string[] {
    try {
      const parsed: unknown = JSON.parse(localStorage.getItem(storageKey) ?? "[]");
      return Array.isArray(parsed) ? parsed.filter((id): id is string => typeof id === "string") : [];
    } catch {
      // A value some other version wrote: start the list afresh rather than fail the page.
      return [];
    }
  }
}

function mediaOf(value: PinValue): MediaRef | undefined {
  return value.value.case === "media" ? value.value.value : undefined;
}

function createdMs(ref: MediaRef): number {
  return ref.createdAt ? timestampMs(ref.createdAt) : 0;
}

async function statOrGone(api: Api, id: string): Promise<MediaRef | undefined> {
  try {
    return (await api.storage.stat({ refId: id })).ref;
  } catch (err) {
    if (ConnectError.from(err).code === Code.NotFound) return undefined;
    throw err;
  }
}
