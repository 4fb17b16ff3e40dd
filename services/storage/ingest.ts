import { createHash } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { BucketClass, MediaMetadataSchema, type MediaRef, MediaRefSchema } from "../../gen/mentatlab/v1/common_pb.js";
import type { UploadHeader } from "../../gen/mentatlab/v1/storage_pb.js";
import type { BlobStore, ByteSource } from "./blob-store.js";
import type { MediaCeilings, SizeLimits } from "./config.js";
import { resolveMimeType, SNIFF_BYTES } from "./content-type.js";
import { digestLockKey, newObjectKey, newRefId } from "./keys.js";
import { uploadHoldOf, type HoldStore } from "./hold-store.js";
import type { KeyedLock } from "./keyed-lock.js";
import type { MalwareScanner, ScanSession } from "./malware-scanner.js";
import { mediaKindOf } from "./media-kind.js";
import { isExpired } from "./media-listing.js";
import { ceilingViolations, constraintViolations, type MetadataExtractor, mimeTypeAccepted } from "./media-metadata.js";
import type { StorageMetrics } from "./metrics.js";
import type { QuotaReservation } from "./quota-reservation.js";
import type { RefCache } from "./ref-cache.js";
import type { RefIndex } from "./ref-index.js";

export interface IngestDeps {
  readonly store: BlobStore;
  readonly index: RefIndex;
  readonly refs: RefCache;
  readonly scanner: MalwareScanner | undefined;
  readonly extractor: MetadataExtractor;
  readonly limits: SizeLimits;
  readonly ceilings: MediaCeilings;
  readonly ttlSeconds: (bucketClass: BucketClass) => number;
  readonly metrics: StorageMetrics;
  readonly digestLock: KeyedLock;
  /** Where each upload records its own hold on the object it stored or found. */
  readonly holds: HoldStore;
}

export interface IngestResult {
  readonly ref: MediaRef;
  readonly deduplicated: boolean;
}

/** Who uploads, and so who is charged and recorded as owner. */
export interface Uploader {
  readonly user: string;
  readonly workspace: string;
}

// Without a declared size, quota is reserved ahead in steps of this much (or what is left) as bytes arrive.
const RESERVE_STEP = 8 * 1024 * 1024;

function refused(message: string, code: Code): ConnectError {
  return new ConnectError(message, code);
}

export function effectiveBucketClass(header: UploadHeader): BucketClass {
  return header.bucketClass === BucketClass.TEMP ? BucketClass.TEMP : BucketClass.MEDIA;
}

/**
 * Turns a byte stream into a stored, verified, registered object: sniff the type from the head, stream
 * into the blob store while hashing, counting against limits and scanning, then verify the digest,
 * deduplicate, extract metadata, check the pin's constraints and register the ref. Any refusal leaves
 * nothing stored and the quota reservation released.
 */
export class Ingestor {
  constructor(private readonly deps: IngestDeps) {}

  /** Size limit for a MIME type; with no type known yet, the largest limit of any kind. */
  limitFor(mimeType: string): number {
    return mimeType ? this.deps.limits[mediaKindOf(mimeType)] : Math.max(...Object.values(this.deps.limits));
  }

  /** Checks what the header alone can tell, before any byte is read or any space reserved. */
  preflight(header: UploadHeader): void {
    const declaredSize = Number(header.sizeBytes);
    const declaredType = header.mimeType.trim().toLowerCase();
    const limit = this.limitFor(declaredType);
    if (declaredSize > limit) {
      const kind = declaredType ? mediaKindOf(declaredType) : "any";
      throw refused(`declared size ${declaredSize} bytes is over the ${limit}-byte limit for ${kind} uploads`, Code.ResourceExhausted);
    }
    const c = header.constraints;
    if (c) {
      if (declaredType && !mimeTypeAccepted(declaredType, c.acceptedMimeTypes)) {
        throw refused(`declared mime_type "${declaredType}" is not accepted by the pin, which takes ${c.acceptedMimeTypes.join(", ")}`, Code.InvalidArgument);
      }
      const pinMax = Number(c.maxSizeBytes);
      if (pinMax > 0 && declaredSize > pinMax) {
        throw refused(`declared size ${declaredSize} bytes is over the pin's ${pinMax}-byte limit`, Code.InvalidArgument);
      }
    }
  }

  async ingest(uploader: Uploader, header: UploadHeader, source: ByteSource, reservation: QuotaReservation): Promise<IngestResult> {
    const bucketClass = effectiveBucketClass(header);
    const blobKey = newObjectKey(uploader.workspace, bucketClass);
    let scan: ScanSession | undefined;
    let stored = false;
    try {
      this.preflight(header);
      const declaredSize = Number(header.sizeBytes);
      if (declaredSize > 0) await reservation.ensure(declaredSize);

      const input = toAsyncIterator(source);
      const { head, done } = await readHead(input);
      const mimeType = await resolveMimeType(head, header.mimeType, done);
      const limit = this.limitFor(mimeType);
      if (declaredSize > limit) {
        throw refused(`declared size ${declaredSize} bytes is over the ${limit}-byte limit for ${mediaKindOf(mimeType)} uploads`, Code.ResourceExhausted);
      }
      if (header.constraints && !mimeTypeAccepted(mimeType, header.constraints.acceptedMimeTypes)) {
        throw refused(
          `content type ${mimeType} is not accepted by the pin, which takes ${header.constraints.acceptedMimeTypes.join(", ")}`,
          Code.InvalidArgument,
        );
      }
      scan = await this.deps.scanner?.open();

      const hash = createHash("sha256");
      let total = 0;
      const activeScan = scan;
      async function* verified(): AsyncGenerator<Uint8Array> {
        let chunk: Uint8Array | undefined = head.byteLength > 0 ? head : undefined;
        let finished = done;
        while (chunk !== undefined) {
          total += chunk.byteLength;
          if (declaredSize > 0 && total > declaredSize) {
            throw refused(`upload sent more than its declared ${declaredSize} bytes`, Code.InvalidArgument);
          }
          if (total > limit) {
            throw refused(`upload is over the ${limit}-byte limit for ${mediaKindOf(mimeType)} uploads`, Code.ResourceExhausted);
          }
          if (declaredSize === 0) await reservation.ensureAhead(total, Math.min(limit, Math.ceil(total / RESERVE_STEP) * RESERVE_STEP));
          else await reservation.keepAlive();
          hash.update(chunk);
          await activeScan?.write(chunk);
          yield chunk;
          if (finished) break;
          const next = await input.next();
          finished = next.done === true;
          chunk = next.done ? undefined : next.value;
        }
      }
      await this.deps.store.write(blobKey, verified());
      stored = true;

      if (declaredSize > 0 && total !== declaredSize) {
        throw refused(`upload ended after ${total} of its declared ${declaredSize} bytes`, Code.InvalidArgument);
      }
      const sha256 = hash.digest("hex");
      if (header.sha256 && header.sha256 !== sha256) {
        throw refused(`sha256 mismatch: the bytes hash to ${sha256}, not the expected ${header.sha256}`, Code.InvalidArgument);
      }
      const verdict = await scan?.finish();
      scan = undefined;
      if (verdict && !verdict.clean) {
        throw refused(`malware detected (${verdict.signature}); the upload was discarded`, Code.InvalidArgument);
      }

      return await this.deps.digestLock.run(digestLockKey({ workspace: uploader.workspace, bucketClass, sha256 }), async () => {
        const existing = await this.existing(uploader.workspace, bucketClass, sha256);
        if (existing) {
          checkConstraints(existing, header);
          await this.deps.store.delete(blobKey);
          stored = false;
          await reservation.release();
          // Uploading it again takes the upload's hold back, if a Delete had released it.
          await this.deps.holds.add(uploadHoldOf(existing, Date.now()));
          return { ref: existing, deduplicated: true };
        }
        const metadata = await this.deps.extractor.extract(blobKey, mimeType);
        const overCeilings = ceilingViolations(metadata, this.deps.ceilings);
        if (overCeilings.length > 0) {
          throw refused(`the ${mimeType} object is over the server's limits: ${overCeilings.join("; ")}`, Code.InvalidArgument);
        }
        const now = Date.now();
        const ttl = this.deps.ttlSeconds(bucketClass);
        const ref = create(MediaRefSchema, {
          id: newRefId(),
          workspace: uploader.workspace,
          bucketClass,
          sizeBytes: BigInt(total),
          mimeType,
          sha256,
          metadata,
          createdAt: timestampFromMs(now),
          expiresAt: ttl > 0 ? timestampFromMs(now + ttl * 1000) : undefined,
          filename: header.filename,
          owner: uploader.user,
        });
        checkConstraints(ref, header);
        await reservation.commit(ref.id, total);
        // The hold first: a crash before the ref is registered leaves a hold naming no ref, which the
        // sweeper drops, never a registered ref without its hold.
        await this.deps.holds.add(uploadHoldOf(ref, now));
        await this.deps.index.put({ ref, blobKey });
        this.deps.metrics.recordUpload(total);
        return { ref, deduplicated: false };
      });
    } catch (err) {
      scan?.abort();
      if (stored) await this.deps.store.delete(blobKey);
      await reservation.release();
      throw err;
    }
  }

  private async existing(workspace: string, bucketClass: BucketClass, sha256: string): Promise<MediaRef | undefined> {
    const refId = await this.deps.index.findByDigest(workspace, { bucketClass, sha256 });
    if (!refId) return undefined;
    const stored = await this.deps.refs.get(workspace, refId);
    if (!stored || isExpired(stored.ref)) return undefined;
    return stored.ref;
  }
}

function checkConstraints(ref: MediaRef, header: UploadHeader): void {
  const violations = constraintViolations(ref.metadata ?? create(MediaMetadataSchema), ref.mimeType, Number(ref.sizeBytes), header.constraints);
  if (violations.length > 0) {
    throw refused(`the object does not fit the pin: ${violations.join("; ")}`, Code.InvalidArgument);
  }
}

/** Pulls chunks until the sniffing window is full or the stream ends. */
async function readHead(input: AsyncIterator<Uint8Array>): Promise<{ head: Uint8Array; done: boolean }> {
  const parts: Uint8Array[] = [];
  let length = 0;
  while (length < SNIFF_BYTES) {
    const next = await input.next();
    if (next.done) return { head: Buffer.concat(parts), done: true };
    parts.push(next.value);
    length += next.value.byteLength;
  }
  return { head: parts.length === 1 ? parts[0]! : Buffer.concat(parts), done: false };
}

function toAsyncIterator(source: ByteSource): AsyncIterator<Uint8Array> {
  if (Symbol.asyncIterator in source) return source[Symbol.asyncIterator]();
  const sync = source[Symbol.iterator]();
  return { next: async () => sync.next() };
}
