import { create } from "@bufbuild/protobuf";
import { type Duration, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  AbortUploadResponseSchema,
  DeleteResponseSchema,
  type DownloadResponse,
  DownloadResponseSchema,
  GetUsageResponseSchema,
  HolderKind as ProtoHolderKind,
  HoldMediaResponseSchema,
  ReleaseMediaResponseSchema,
  ListMediaResponseSchema,
  PresignResponseSchema,
  StatResponseSchema,
  StorageService,
  UploadChunkResponseSchema,
  type UploadRequest,
  UploadResponseSchema,
} from "../../gen/mentatlab/v1/storage_pb.js";
import { principalOf } from "../shared/principal.js";
import type { BlobStore } from "./blob-store.js";
import { type HolderKind, uploadHolder } from "./hold-store.js";
import type { Ingestor, Uploader } from "./ingest.js";
import { isRefId } from "./keys.js";
import { defaultChunkBytes, mediaKindOf } from "./media-kind.js";
import { decodePageToken, encodePageToken, isExpired } from "./media-listing.js";
import { QuotaReservation, STREAM_LEASE_MS } from "./quota-reservation.js";
import type { ObjectHolds } from "./object-holds.js";
import type { QuotaStore } from "./quota-store.js";
import type { RefCache } from "./ref-cache.js";
import type { RefIndex, StoredRef } from "./ref-index.js";
import { rechunk } from "./rechunk.js";
import type { ResumableUploads } from "./resumable-uploads.js";
import type { UrlSigner } from "./url-signer.js";

export interface StorageServiceDeps {
  readonly store: BlobStore;
  /** Lists a workspace's refs; single lookups go through `refs`, its cache. */
  readonly index: RefIndex;
  readonly refs: RefCache;
  readonly quotas: QuotaStore;
  readonly ingestor: Ingestor;
  readonly uploads: ResumableUploads;
  readonly holds: ObjectHolds;
  readonly signer: UrlSigner;
  readonly publicUrl: string;
  /** Download chunk size for kinds without their own default. */
  readonly defaultChunkBytes: number;
}

const DEFAULT_PRESIGN_SECONDS = 15 * 60;
const DEFAULT_PAGE_SIZE = 50;

function uploaderOf(ctx: HandlerContext): Uploader {
  const { user, workspace } = principalOf(ctx);
  return { user, workspace };
}

/**
 * A live ref of this workspace, or NOT_FOUND: another workspace's ref is indistinguishable from none.
 * A ref past its own expiry is still live while a run or cache entry holds it.
 */
export async function lookupRef(refs: RefCache, holds: ObjectHolds, workspace: string, refId: string): Promise<StoredRef> {
  const stored = isRefId(refId) ? await refs.get(workspace, refId) : undefined;
  const live = stored && stored.ref.workspace === workspace && (!isExpired(stored.ref) || (await holds.liveHolds(workspace, refId, Date.now())).length > 0);
  if (!stored || !live) throw new ConnectError(`no object "${refId}" in this workspace`, Code.NotFound);
  return stored;
}

const HOLDER_KINDS: Readonly<Record<HolderKind, ProtoHolderKind>> = {
  upload: ProtoHolderKind.UPLOAD,
  run: ProtoHolderKind.RUN,
  cache: ProtoHolderKind.CACHE,
};

function durationMs(duration: Duration | undefined): number {
  return duration ? Number(duration.seconds) * 1000 + Math.floor(duration.nanos / 1e6) : 0;
}

/** Path of an object on the plain-HTTP media route. */
export function mediaPath(workspace: string, refId: string): string {
  return `/media/${encodeURIComponent(workspace)}/${refId}`;
}

/** The StorageService handlers, over injected backends. */
export function createStorageServiceImpl(deps: StorageServiceDeps): ServiceImpl<typeof StorageService> {
  return {
    async upload(requests: AsyncIterable<UploadRequest>, ctx) {
      const uploader = uploaderOf(ctx);
      const input = requests[Symbol.asyncIterator]();
      const first = await input.next();
      if (first.done || first.value.part.case !== "header") {
        throw new ConnectError("the first Upload message must carry the header, before any chunk", Code.InvalidArgument);
      }
      const header = first.value.part.value;
      deps.ingestor.preflight(header);
      async function* chunks(): AsyncGenerator<Uint8Array> {
        for (;;) {
          const next = await input.next();
          if (next.done) return;
          if (next.value.part.case === "header") {
            throw new ConnectError("an Upload stream carries one header, first; send only chunks after it", Code.InvalidArgument);
          }
          if (next.value.part.case === "chunk") yield next.value.part.value;
        }
      }
      const lease = { id: QuotaReservation.newLeaseId(), ...uploader };
      const reservation = new QuotaReservation(deps.quotas, lease, STREAM_LEASE_MS);
      return create(UploadResponseSchema, await deps.ingestor.ingest(uploader, header, chunks(), reservation));
    },

    async createUpload(req, ctx) {
      return deps.uploads.create(uploaderOf(ctx), req);
    },

    async uploadChunk(req, ctx) {
      const committed = await deps.uploads.chunk(uploaderOf(ctx), req);
      return create(UploadChunkResponseSchema, { committedOffset: BigInt(committed) });
    },

    async getUploadStatus(req, ctx) {
      return deps.uploads.status(uploaderOf(ctx), req.uploadId);
    },

    async completeUpload(req, ctx) {
      return deps.uploads.complete(uploaderOf(ctx), req);
    },

    async abortUpload(req, ctx) {
      await deps.uploads.abort(uploaderOf(ctx), req.uploadId);
      return create(AbortUploadResponseSchema);
    },

    async *download(req, ctx): AsyncGenerator<DownloadResponse> {
      const { workspace } = principalOf(ctx);
      const { ref, blobKey } = await lookupRef(deps.refs, deps.holds, workspace, req.refId);
      const size = Number(ref.sizeBytes);
      const offset = Number(req.offset);
      if (offset > size) {
        throw new ConnectError(`offset ${offset} is past the end of the ${size}-byte object`, Code.OutOfRange);
      }
      const length = req.length > 0n ? Math.min(Number(req.length), size - offset) : size - offset;
      const chunkBytes = req.chunkBytes || defaultChunkBytes(mediaKindOf(ref.mimeType), deps.defaultChunkBytes);
      const body = await deps.store.read(blobKey, { offset, length });
      if (!body) throw new ConnectError(`the bytes of object "${ref.id}" are gone (expired)`, Code.NotFound);
      yield create(DownloadResponseSchema, { part: { case: "header", value: ref } });
      let at = offset;
      for await (const data of rechunk(body, chunkBytes)) {
        // Returning quietly on abort would end the stream with OK: a silent truncation.
        ctx.signal.throwIfAborted();
        yield create(DownloadResponseSchema, { part: { case: "chunk", value: { offset: BigInt(at), data } } });
        at += data.byteLength;
      }
    },

    async stat(req, ctx) {
      const { ref } = await lookupRef(deps.refs, deps.holds, principalOf(ctx).workspace, req.refId);
      return create(StatResponseSchema, { ref });
    },

    async presign(req, ctx) {
      const { workspace } = principalOf(ctx);
      const { ref } = await lookupRef(deps.refs, deps.holds, workspace, req.refId);
      const ttl = req.ttl && (req.ttl.seconds > 0n || req.ttl.nanos > 0) ? Math.ceil(Number(req.ttl.seconds) + req.ttl.nanos / 1e9) : DEFAULT_PRESIGN_SECONDS;
      const expires = Math.floor(Date.now() / 1000) + ttl;
      const query = new URLSearchParams({ expires: String(expires), sig: deps.signer.sign(workspace, ref.id, expires) });
      return create(PresignResponseSchema, {
        url: `${deps.publicUrl}${mediaPath(workspace, ref.id)}?${query}`,
        expiresAt: timestampFromMs(expires * 1000),
      });
    },

    async delete(req, ctx) {
      const stored = await lookupRef(deps.refs, deps.holds, principalOf(ctx).workspace, req.refId);
      const { freed, remaining } = await deps.holds.release(stored, uploadHolder(stored.ref.id), Date.now());
      return create(DeleteResponseSchema, { freedBytes: BigInt(freed), remainingHolders: remaining.length });
    },

    async holdMedia(req, ctx) {
      const { workspace } = principalOf(ctx);
      const now = Date.now();
      const ttlMs = durationMs(req.ttl);
      const found = await Promise.all(req.refIds.map((refId) => lookupRef(deps.refs, deps.holds, workspace, refId)));
      let heldBytes = 0n;
      for (const stored of found) {
        if (!(await deps.holds.hold(stored, req.holder, ttlMs > 0 ? now + ttlMs : 0, now))) {
          throw new ConnectError(`object "${stored.ref.id}" was deleted before it could be held`, Code.NotFound);
        }
        heldBytes += stored.ref.sizeBytes;
      }
      return create(HoldMediaResponseSchema, { heldBytes });
    },

    async releaseMedia(req, ctx) {
      const { workspace } = principalOf(ctx);
      let freedBytes = 0n;
      let deletedCount = 0n;
      for (const refId of req.refIds) {
        // Releasing what is gone already is done: releases are retried after faults.
        const stored = isRefId(refId) ? await deps.refs.get(workspace, refId) : undefined;
        if (!stored || stored.ref.workspace !== workspace) continue;
        const { freed, remaining } = await deps.holds.release(stored, req.holder, Date.now());
        freedBytes += BigInt(freed);
        if (remaining.length === 0) deletedCount += 1n;
      }
      return create(ReleaseMediaResponseSchema, { freedBytes, deletedCount });
    },

    async getUsage(_req, ctx) {
      const { user, workspace } = principalOf(ctx);
      const usage = await deps.quotas.usage(user, workspace);
      return create(GetUsageResponseSchema, {
        userUsedBytes: BigInt(usage.userUsedBytes),
        userLimitBytes: BigInt(deps.quotas.limits.userBytes),
        workspaceUsedBytes: BigInt(usage.workspaceUsedBytes),
        workspaceLimitBytes: BigInt(deps.quotas.limits.workspaceBytes),
        workspaceObjectCount: BigInt(usage.workspaceObjectCount),
        byHolder: [...(await deps.holds.usageByKind(workspace, Date.now()))].map(([kind, held]) => ({
          kind: HOLDER_KINDS[kind],
          bytes: BigInt(held.bytes),
          objectCount: BigInt(held.objects),
          holderCount: BigInt(held.holders),
        })),
      });
    },

    async listMedia(req, ctx) {
      const after = decodePageToken(req.pageToken);
      const page = await deps.index.list(principalOf(ctx).workspace, {
        pageSize: req.pageSize === 0 ? DEFAULT_PAGE_SIZE : req.pageSize,
        ...(after ? { after } : {}),
        mimeTypePrefix: req.mimeTypePrefix,
        nowMs: Date.now(),
      });
      return create(ListMediaResponseSchema, { refs: page.refs, nextPageToken: page.next ? encodePageToken(page.next) : "" });
    },
  };
}
