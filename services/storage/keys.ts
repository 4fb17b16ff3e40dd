import { randomBytes } from "node:crypto";
import { BucketClass } from "../../gen/mentatlab/v1/common_pb.js";

// Key layout in the blob store. Objects live under their bucket class so S3 lifecycle rules can
// target them by prefix; documents (refs, digests, upload sessions) live beside them.

/** Encodes a user-supplied value as one key segment (no `/`, never `.` or `..`). */
export function segment(value: string): string {
  return encodeURIComponent(value).replace(/\./g, "%2E");
}

export function bucketPrefix(bucketClass: BucketClass): "media" | "temp" {
  return bucketClass === BucketClass.TEMP ? "temp" : "media";
}

export function newObjectKey(workspace: string, bucketClass: BucketClass): string {
  return `${bucketPrefix(bucketClass)}/${segment(workspace)}/${randomBytes(16).toString("hex")}`;
}

/** The lock uploads of one digest, and hold changes of the object holding it, exclude each other by. */
export function digestLockKey(ref: { readonly workspace: string; readonly bucketClass: BucketClass; readonly sha256: string }): string {
  return `${ref.workspace}\u0000${ref.bucketClass}\u0000${ref.sha256}`;
}

export const REFS_PREFIX = "refs/";

export function refDocKey(workspace: string, refId: string): string {
  return `${REFS_PREFIX}${segment(workspace)}/${refId}.json`;
}

export function digestDocKey(workspace: string, bucketClass: BucketClass, sha256: string): string {
  return `digests/${segment(workspace)}/${bucketPrefix(bucketClass)}/${sha256}`;
}

export const UPLOADS_PREFIX = "uploads/";

export function uploadSessionKey(uploadId: string): string {
  return `${UPLOADS_PREFIX}${uploadId}/session.json`;
}

export function uploadPartKey(uploadId: string, offset: number): string {
  return `${UPLOADS_PREFIX}${uploadId}/parts/${String(offset).padStart(16, "0")}`;
}

/** Where a presigned PUT lands before CompleteUpload verifies it. */
export function uploadPresignedKey(uploadId: string): string {
  return `${UPLOADS_PREFIX}${uploadId}/object`;
}

const REF_ID = /^m_[A-Za-z0-9_-]{22}$/;
const UPLOAD_ID = /^u_[A-Za-z0-9_-]{22}$/;

export function newRefId(): string {
  return `m_${randomBytes(16).toString("base64url")}`;
}

export function newUploadId(): string {
  return `u_${randomBytes(16).toString("base64url")}`;
}

/** Ids not of our making can never name a stored object, so they are NOT_FOUND without a lookup. */
export function isRefId(id: string): boolean {
  return REF_ID.test(id);
}

export function isUploadId(id: string): boolean {
  return UPLOAD_ID.test(id);
}
