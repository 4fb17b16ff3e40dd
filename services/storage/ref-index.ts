import { fromJsonString, toJsonString } from "@bufbuild/protobuf";
import { type MediaRef, MediaRefSchema } from "../../gen/mentatlab/v1/common_pb.js";
import { type BlobStore, readSmall, writeSmall } from "./blob-store.js";
import { digestDocKey, REFS_PREFIX, refDocKey, segment } from "./keys.js";
import { pageOf, type RefPage, type RefPageQuery } from "./media-listing.js";

/** A MediaRef and where its bytes are. */
export interface StoredRef {
  readonly ref: MediaRef;
  readonly blobKey: string;
}

/** Finds refs by id and by content digest. */
export interface RefIndex {
  get(workspace: string, refId: string): Promise<StoredRef | undefined>;
  /** The ref holding these bytes in this workspace and bucket class, if any. */
  findByDigest(workspace: string, ref: Pick<MediaRef, "bucketClass" | "sha256">): Promise<string | undefined>;
  put(stored: StoredRef): Promise<void>;
  delete(stored: StoredRef): Promise<void>;
  /** Every stored ref, for the expiry sweeper. */
  all(): AsyncIterable<StoredRef>;
  /** A page of the workspace's refs, newest first (ListMedia). */
  list(workspace: string, query: RefPageQuery): Promise<RefPage>;
}

interface RefDoc {
  readonly blobKey: string;
  readonly ref: string;
}

export function encodeStoredRef(stored: StoredRef): string {
  const doc: RefDoc = { blobKey: stored.blobKey, ref: toJsonString(MediaRefSchema, stored.ref) };
  return JSON.stringify(doc);
}

export function decodeStoredRef(text: string): StoredRef {
  const doc = JSON.parse(text) as RefDoc;
  return { blobKey: doc.blobKey, ref: fromJsonString(MediaRefSchema, doc.ref) };
}

/**
 * Refs as small JSON documents in the blob store itself, so every replica sharing the bucket (or the
 * data directory) sees the same index with no extra database.
 */
export class BlobRefIndex implements RefIndex {
  constructor(private readonly store: BlobStore) {}

  async get(workspace: string, refId: string): Promise<StoredRef | undefined> {
    const bytes = await readSmall(this.store, refDocKey(workspace, refId));
    return bytes ? decodeStoredRef(bytes.toString("utf8")) : undefined;
  }

  async findByDigest(workspace: string, ref: Pick<MediaRef, "bucketClass" | "sha256">): Promise<string | undefined> {
    const bytes = await readSmall(this.store, digestDocKey(workspace, ref.bucketClass, ref.sha256));
    return bytes?.toString("utf8");
  }

  async put(stored: StoredRef): Promise<void> {
    const { ref } = stored;
    await writeSmall(this.store, refDocKey(ref.workspace, ref.id), Buffer.from(encodeStoredRef(stored)));
    await writeSmall(this.store, digestDocKey(ref.workspace, ref.bucketClass, ref.sha256), Buffer.from(ref.id));
  }

  async delete(stored: StoredRef): Promise<void> {
    const { ref } = stored;
    const digestKey = digestDocKey(ref.workspace, ref.bucketClass, ref.sha256);
    // Only drop the digest entry if it still points at this ref.
    if ((await readSmall(this.store, digestKey))?.toString("utf8") === ref.id) await this.store.delete(digestKey);
    await this.store.delete(refDocKey(ref.workspace, ref.id));
  }

  async *all(): AsyncIterable<StoredRef> {
    yield* this.documents(REFS_PREFIX);
  }

  /** Reads every document of the workspace per page: the embedded database's index sorts for itself. */
  async list(workspace: string, query: RefPageQuery): Promise<RefPage> {
    const refs = [];
    for await (const stored of this.documents(`${REFS_PREFIX}${segment(workspace)}/`)) refs.push(stored.ref);
    return pageOf(refs, query);
  }

  private async *documents(prefix: string): AsyncIterable<StoredRef> {
    for await (const info of this.store.list(prefix)) {
      const bytes = await readSmall(this.store, info.key);
      if (bytes) yield decodeStoredRef(bytes.toString("utf8"));
    }
  }
}
