import { Code, ConnectError } from "@connectrpc/connect";

const defaultPageSize = 50;
const maxPageSize = 500;

/** Opaque page tokens: the key of the last item returned, so pages stay stable as items are added. */
export function encodePageToken(lastKey: string): string {
  return Buffer.from(`v1:${lastKey}`).toString("base64url");
}

export function decodePageToken(token: string): string | undefined {
  if (!token) return undefined;
  const text = Buffer.from(token, "base64url").toString("utf8");
  if (!text.startsWith("v1:")) throw new ConnectError("page_token is not one this server issued; pass next_page_token unchanged", Code.InvalidArgument);
  return text.slice(3);
}

export function pageSizeOf(requested: number): number {
  return Math.min(requested || defaultPageSize, maxPageSize);
}

/** Run list tokens carry the last run id returned. */
export function encodeRunPageToken(lastRunId: string): string {
  return encodePageToken(lastRunId);
}

export function decodeRunPageToken(token: string): string {
  const runId = decodePageToken(token);
  if (runId !== undefined && !runId.startsWith("run_")) throw new ConnectError("page_token is damaged; pass next_page_token unchanged", Code.InvalidArgument);
  return runId ?? "";
}
