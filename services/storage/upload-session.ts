import { fromJsonString, toJsonString } from "@bufbuild/protobuf";
import { type UploadHeader, UploadHeaderSchema } from "../../gen/mentatlab/v1/storage_pb.js";
import { type BlobStore, readSmall, writeSmall } from "./blob-store.js";
import { uploadPartKey, uploadPresignedKey, uploadSessionKey } from "./keys.js";

/** A resumable upload in progress, kept as a document beside its parts so any replica can continue it. */
export interface UploadSession {
  readonly id: string;
  readonly user: string;
  readonly workspace: string;
  readonly header: UploadHeader;
  /** Bytes committed so far: the sum of `parts`. */
  committed: number;
  /** Lengths of the committed parts, in order; part i starts at the sum of the ones before it. */
  parts: number[];
  /** Quota held for this upload. */
  reservedBytes: number;
  /** Milliseconds since the epoch. */
  readonly expiresAtMs: number;
  /** True when the bytes go to a presigned PUT instead of chunks. */
  readonly presigned: boolean;
  /** Type sniffed from the first chunk, once enough bytes arrived; decides the size limit from then on. */
  sniffedMimeType?: string;
}

interface SessionDoc extends Omit<UploadSession, "header"> {
  readonly header: string;
}

/** Loads, saves and removes upload sessions and their parts in the blob store. */
export class UploadSessionStore {
  constructor(private readonly store: BlobStore) {}

  async load(id: string): Promise<UploadSession | undefined> {
    const bytes = await readSmall(this.store, uploadSessionKey(id));
    if (!bytes) return undefined;
    const doc = JSON.parse(bytes.toString("utf8")) as SessionDoc;
    return { ...doc, header: fromJsonString(UploadHeaderSchema, doc.header) };
  }

  async save(session: UploadSession): Promise<void> {
    const doc: SessionDoc = { ...session, header: toJsonString(UploadHeaderSchema, session.header) };
    await writeSmall(this.store, uploadSessionKey(session.id), Buffer.from(JSON.stringify(doc)));
  }

  async writePart(id: string, offset: number, data: Uint8Array): Promise<void> {
    await writeSmall(this.store, uploadPartKey(id, offset), data);
  }

  /** The committed bytes, streamed part after part. */
  async *readParts(session: UploadSession): AsyncGenerator<Uint8Array> {
    let offset = 0;
    for (const length of session.parts) {
      const body = await this.store.read(uploadPartKey(session.id, offset));
      if (!body) throw new Error(`upload ${session.id} lost its part at offset ${offset}`);
      yield* body;
      offset += length;
    }
  }

  /** Removes the session document, its parts and any presigned object. */
  async remove(session: Pick<UploadSession, "id" | "parts">): Promise<void> {
    let offset = 0;
    for (const length of session.parts) {
      await this.store.delete(uploadPartKey(session.id, offset));
      offset += length;
    }
    await this.store.delete(uploadPresignedKey(session.id));
    await this.store.delete(uploadSessionKey(session.id));
  }
}
