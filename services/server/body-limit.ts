/** Raised through the body stream when a client sends more than the plain-HTTP body limit. */
export class BodyTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`request body exceeds ${limit} bytes`);
  }
}

/**
 * The same request with `signal`, its body failing with `BodyTooLargeError` once it passes
 * `limit` bytes (a chunked body declares no length to refuse up front).
 */
export function limitedRequest(request: Request, limit: number, signal: AbortSignal): Request {
  if (request.body === null) return new Request(request, { signal });
  let seen = 0;
  const counter = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      seen += chunk.byteLength;
      if (seen > limit) controller.error(new BodyTooLargeError(limit));
      else controller.enqueue(chunk);
    },
  });
  return new Request(request, { body: request.body.pipeThrough(counter), signal, duplex: "half" } as RequestInit);
}
