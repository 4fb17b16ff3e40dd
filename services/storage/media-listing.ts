import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { MediaRef } from "../../gen/mentatlab/v1/common_pb.js";

// ListMedia's order and paging, shared by every ref index: newest first, ties broken by id, so a page
// token names the last object seen and pages neither repeat nor skip objects stored in between.

/** A place in newest-first order: the last object of a page. */
export interface RefPosition {
  readonly createdMs: number;
  readonly refId: string;
}

export interface RefPageQuery {
  readonly pageSize: number;
  /** Start after this object; the first page without. */
  readonly after?: RefPosition;
  /** Only objects whose MIME type starts with this; "" for all. */
  readonly mimeTypePrefix: string;
  /** Objects expired by then are left out (the sweeper may not have removed them yet). */
  readonly nowMs: number;
}

export interface RefPage {
  readonly refs: MediaRef[];
  /** Where the next page starts; undefined at the end. */
  readonly next?: RefPosition;
}

/** True once a ref's expiry has passed (the sweeper may not have removed it yet). */
export function isExpired(ref: MediaRef, now = Date.now()): boolean {
  if (!ref.expiresAt) return false;
  return timestampMs(ref.expiresAt) <= now;
}

export function positionOf(ref: MediaRef): RefPosition {
  return { createdMs: ref.createdAt ? timestampMs(ref.createdAt) : 0, refId: ref.id };
}

/** Whether `a` comes before `b` in newest-first order. */
function before(a: RefPosition, b: RefPosition): boolean {
  return a.createdMs !== b.createdMs ? a.createdMs > b.createdMs : a.refId > b.refId;
}

/** One page of `refs` (any order) as `query` asks; for indexes that cannot sort for themselves. */
export function pageOf(refs: Iterable<MediaRef>, query: RefPageQuery): RefPage {
  const { after } = query;
  const matching = [...refs]
    .filter((ref) => ref.mimeType.startsWith(query.mimeTypePrefix) && !isExpired(ref, query.nowMs))
    .filter((ref) => after === undefined || before(after, positionOf(ref)))
    .sort((a, b) => (before(positionOf(a), positionOf(b)) ? -1 : 1));
  const page = matching.slice(0, query.pageSize);
  const last = page.at(-1);
  return { refs: page, ...(matching.length > page.length && last ? { next: positionOf(last) } : {}) };
}

const tokenPattern = /^(\d{1,16})\.(m_[A-Za-z0-9_-]{22})$/;

export function encodePageToken(position: RefPosition): string {
  return Buffer.from(`${position.createdMs}.${position.refId}`).toString("base64url");
}

/** The position a ListMedia page token names; INVALID_ARGUMENT for one this service did not give out. */
export function decodePageToken(token: string): RefPosition | undefined {
  if (token === "") return undefined;
  const match = tokenPattern.exec(Buffer.from(token, "base64url").toString("utf8"));
  if (!match)
    throw new ConnectError(
      "page_token is not one ListMedia returned: pass next_page_token from the previous page, or nothing for the first",
      Code.InvalidArgument,
    );
  return { createdMs: Number(match[1]), refId: match[2]! };
}
