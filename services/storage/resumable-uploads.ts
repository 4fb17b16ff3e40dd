import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type {
  CompleteUploadRequest,
  CompleteUploadResponse,
  CreateUploadRequest,
  CreateUploadResponse,
  GetUploadStatusResponse,
  UploadChunkRequest,
} from "../../gen/mentatlab/v1/storage_pb.js";
import {
  CompleteUploadResponseSchema,
  CreateUploadResponseSchema,
  GetUploadStatusResponseSchema,
  UploadHeaderSchema,
} from "../../gen/mentatlab/v1/storage_pb.js";
import type { BlobStore, ByteSource } from "./blob-store.js";
import { resolveMimeType, SNIFF_BYTES } from "./content-type.js";
import type { Ingestor, Uploader } from "./ingest.js";
import { isUploadId, newUploadId, UPLOADS_PREFIX, uploadPresignedKey } from "./keys.js";
import type { KeyedLock } from "./keyed-lock.js";
import { mediaKindOf } from "./media-kind.js";
import { QuotaReservation, STREAM_LEASE_MS } from "./quota-reservation.js";
import type { Lease, QuotaStore } from "./quota-store.js";
import type { UploadSession, UploadSessionStore } from "./upload-session.js";

export interface ResumableUploadsDeps {
  readonly store: BlobStore;
  readonly sessions: UploadSessionStore;
  readonly ingestor: Ingestor;
  readonly quotas: QuotaStore;
  readonly lock: KeyedLock;
  readonly uploadTtlSeconds: number;
}

/** Largest chunk UploadChunk accepts (the proto's limit); also what we recommend. */
const RECOMMENDED_CHUNK_BYTES = 4 * 1024 * 1024;

/** An abandoned session's hold outlives it by this much, so the session sweep (which also frees it) goes first. */
const SESSION_LEASE_GRACE_MS = 60 * 60 * 1000;

function leaseOf(session: UploadSession): Lease {
  return { id: session.id, user: session.user, workspace: session.workspace };
}

/** A chunk running past the declared size is a client's mistake it can correct by resending; the upload stays open. */
function checkDeclaredSize(session: UploadSession, end: number): void {
  const declared = Number(session.header.sizeBytes);
  if (declared > 0 && end > declared) {
    throw new ConnectError(`chunk would end at byte ${end}, past the declared size of ${declared} bytes`, Code.InvalidArgument);
  }
}

function notFound(id: string): ConnectError {
  return new ConnectError(`no upload "${id}" in progress in this workspace (it may have expired)`, Code.NotFound);
}

/**
 * CreateUpload → UploadChunk at offsets → CompleteUpload, for clients that cannot stream (browsers,
 * HTTP/1.1), and presigned PUT uploads. Each accepted chunk is stored as a part at once, so a client
 * whose connection drops asks GetUploadStatus and continues from the committed offset.
 */
export class ResumableUploads {
  constructor(private readonly deps: ResumableUploadsDeps) {}

  async create(uploader: Uploader, req: CreateUploadRequest): Promise<CreateUploadResponse> {
    const header = req.header ?? create(UploadHeaderSchema);
    this.deps.ingestor.preflight(header);
    const id = newUploadId();
    let presignedPut;
    if (req.presigned) {
      presignedPut = await this.deps.store.presignPut(uploadPresignedKey(id), this.deps.uploadTtlSeconds);
      if (!presignedPut) {
        throw new ConnectError("presigned uploads need the S3 backend; send the bytes with UploadChunk instead", Code.FailedPrecondition);
      }
    }
    const session: UploadSession = {
      id,
      user: uploader.user,
      workspace: uploader.workspace,
      header,
      committed: 0,
      parts: [],
      reservedBytes: 0,
      expiresAtMs: Date.now() + this.deps.uploadTtlSeconds * 1000,
      presigned: req.presigned,
    };
    const reservation = this.reservationOf(session);
    await reservation.ensure(Number(header.sizeBytes));
    session.reservedBytes = reservation.heldBytes;
    try {
      await this.deps.sessions.save(session);
    } catch (err) {
      await reservation.release();
      throw err;
    }
    return create(CreateUploadResponseSchema, {
      uploadId: id,
      committedOffset: 0n,
      expiresAt: timestampFromMs(session.expiresAtMs),
      recommendedChunkBytes: RECOMMENDED_CHUNK_BYTES,
      presignedPutUrl: presignedPut?.url ?? "",
      presignedPutHeaders: presignedPut?.headers ?? {},
    });
  }

  private async load(uploader: Uploader, id: string): Promise<UploadSession> {
    if (!isUploadId(id)) throw notFound(id);
    const session = await this.deps.sessions.load(id);
    if (!session || session.workspace !== uploader.workspace || session.user !== uploader.user) throw notFound(id);
    if (session.expiresAtMs <= Date.now()) throw notFound(id);
    return session;
  }

  async chunk(uploader: Uploader, req: UploadChunkRequest): Promise<number> {
    return this.deps.lock.run(req.uploadId, async () => {
      const session = await this.load(uploader, req.uploadId);
      if (session.presigned) {
        throw new ConnectError("this upload goes to its presigned PUT URL, not UploadChunk", Code.FailedPrecondition);
      }
      const offset = Number(req.offset);
      if (offset > session.committed) {
        throw new ConnectError(
          `chunk starts at offset ${offset} but only ${session.committed} bytes are committed; resend from offset ${session.committed}`,
          Code.OutOfRange,
        );
      }
      const end = offset + req.data.byteLength;
      // Bytes below the committed offset were already stored: re-sent chunks are no-ops.
      if (end <= session.committed) return session.committed;
      const data = req.data.subarray(session.committed - offset);
      checkDeclaredSize(session, end);
      await this.refusingDiscards(session, async () => {
        if (session.committed === 0) session.sniffedMimeType = await this.sniffFirstChunk(session, data);
        this.checkLimit(session, end);
      });
      const reservation = this.reservationOf(session);
      await reservation.ensure(end);
      session.reservedBytes = reservation.heldBytes;
      await this.deps.sessions.writePart(session.id, session.committed, data);
      session.parts.push(data.byteLength);
      session.committed = end;
      await this.deps.sessions.save(session);
      return session.committed;
    });
  }

  /**
   * Runs checks of what the bytes are. An upload they refuse cannot succeed whatever is sent next (the
   * committed bytes fix its type, and its size only grows), so it ends there: its parts are removed
   * and its quota is given back at once, rather than held until the session expires.
   */
  private async refusingDiscards(session: UploadSession, checks: () => Promise<void>): Promise<void> {
    try {
      await checks();
    } catch (err) {
      if (!(err instanceof ConnectError)) throw err;
      await this.discard(session);
      throw new ConnectError(`${err.rawMessage}; upload ${session.id} was discarded, start a new one`, err.code);
    }
  }

  private checkLimit(session: UploadSession, end: number): void {
    const type = session.sniffedMimeType ?? session.header.mimeType;
    const limit = this.deps.ingestor.limitFor(type);
    if (end > limit) {
      throw new ConnectError(
        `upload would reach ${end} bytes, over the ${limit}-byte limit for ${type ? mediaKindOf(type) : "any"} uploads`,
        Code.ResourceExhausted,
      );
    }
  }

  /** Refuses a wrong type on the first chunk already, when it holds enough bytes to tell; returns the type. */
  private async sniffFirstChunk(session: UploadSession, data: Uint8Array): Promise<string | undefined> {
    const declared = Number(session.header.sizeBytes);
    const complete = declared > 0 && data.byteLength >= declared;
    if (!complete && data.byteLength < SNIFF_BYTES) return undefined;
    return resolveMimeType(data.subarray(0, SNIFF_BYTES), session.header.mimeType, complete);
  }

  /** The session's quota hold: a lease named after the upload that lapses a little after the session does. */
  private reservationOf(session: UploadSession): QuotaReservation {
    const leaseMs = session.expiresAtMs + SESSION_LEASE_GRACE_MS - Date.now();
    return new QuotaReservation(this.deps.quotas, leaseOf(session), leaseMs, session.reservedBytes);
  }

  async status(uploader: Uploader, id: string): Promise<GetUploadStatusResponse> {
    const session = await this.load(uploader, id);
    return create(GetUploadStatusResponseSchema, {
      committedOffset: BigInt(session.committed),
      sizeBytes: session.header.sizeBytes,
      expiresAt: timestampFromMs(session.expiresAtMs),
    });
  }

  async complete(uploader: Uploader, req: CompleteUploadRequest): Promise<CompleteUploadResponse> {
    return this.deps.lock.run(req.uploadId, async () => {
      const session = await this.load(uploader, req.uploadId);
      const header = create(UploadHeaderSchema, session.header);
      if (req.sha256) {
        if (header.sha256 && header.sha256 !== req.sha256) {
          throw new ConnectError(`sha256 ${req.sha256} differs from the ${header.sha256} given when the upload was created`, Code.InvalidArgument);
        }
        header.sha256 = req.sha256;
      }
      let source: ByteSource;
      if (session.presigned) {
        const body = await this.deps.store.read(uploadPresignedKey(session.id));
        if (!body) {
          throw new ConnectError("nothing was PUT to the presigned URL yet; upload the bytes, then complete", Code.FailedPrecondition);
        }
        source = body;
      } else {
        const declared = Number(header.sizeBytes);
        if (declared > 0 && session.committed < declared) {
          throw new ConnectError(
            `only ${session.committed} of the declared ${declared} bytes are committed; send the rest from offset ${session.committed}`,
            Code.FailedPrecondition,
          );
        }
        source = this.deps.sessions.readParts(session);
      }
      // From here the upload streams through the ingestor, which keeps the lease alive as it goes.
      const reservation = new QuotaReservation(this.deps.quotas, leaseOf(session), STREAM_LEASE_MS, session.reservedBytes);
      try {
        const result = await this.deps.ingestor.ingest(uploader, header, source, reservation);
        return create(CompleteUploadResponseSchema, result);
      } finally {
        // Verified or refused, the upload is over: a refused one keeps nothing (the ingestor released its quota).
        await this.deps.sessions.remove(session);
      }
    });
  }

  async abort(uploader: Uploader, id: string): Promise<void> {
    await this.deps.lock.run(id, async () => {
      const session = await this.load(uploader, id);
      await this.discard(session);
    });
  }

  private async discard(session: UploadSession): Promise<void> {
    await this.deps.sessions.remove(session);
    await this.deps.quotas.release(session.id);
  }

  /** Discards uploads past their expiry and gives their reserved quota back; returns how many. */
  async sweep(now = Date.now()): Promise<number> {
    let swept = 0;
    for await (const info of this.deps.store.list(UPLOADS_PREFIX)) {
      if (!info.key.endsWith("/session.json")) continue;
      const id = info.key.slice(UPLOADS_PREFIX.length, -"/session.json".length);
      await this.deps.lock.run(id, async () => {
        const session = await this.deps.sessions.load(id);
        if (!session || session.expiresAtMs > now) return;
        await this.discard(session);
        swept += 1;
      });
    }
    return swept;
  }
}
