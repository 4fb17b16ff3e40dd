import { ConnectError, type Interceptor } from "@connectrpc/connect";

/**
 * Turns a server stream that ended normally after its call was aborted (shutdown, deadline) into
 * an error. A handler that just returns on abort would otherwise end the stream with OK, and the
 * client would take a truncated stream for a complete one.
 */
export const failTruncatedStreams: Interceptor = (next) => async (request) => {
  const response = await next(request);
  if (!response.stream) return response;
  return { ...response, message: endWithAbortReason(response.message, request.signal) };
};

async function* endWithAbortReason<T>(messages: AsyncIterable<T>, signal: AbortSignal): AsyncIterable<T> {
  yield* messages;
  if (signal.aborted) throw ConnectError.from(signal.reason);
}
