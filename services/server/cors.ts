import { cors as connectCors } from "@connectrpc/connect";

/** Request headers browsers may send beyond the ones Connect and gRPC-web need. */
const extraAllowedHeaders = ["Authorization", "Range", "If-None-Match"];
/** Response headers browsers may read beyond Connect's: plain-HTTP media routes use these. */
const extraExposedHeaders = ["Content-Range", "Content-Length", "ETag", "Accept-Ranges"];

/** A preflight cache lifetime that spares browsers a round trip per call. */
const preflightMaxAgeSeconds = 7200;

/** What the server answers to a request's Origin. */
export type CorsDecision =
  | { kind: "none" }
  | { kind: "denied"; origin: string }
  | { kind: "preflight"; headers: Record<string, string> }
  | { kind: "actual"; headers: Record<string, string> };

/** What an origin that is not allowed is told (403). */
export function corsDeniedText(origin: string): string {
  return `origin ${origin} is not allowed; add it to the server's allowed CORS origins`;
}

/** Decides CORS for one request from its method and headers. */
export type CorsPolicy = (method: string, header: (name: string) => string | undefined) => CorsDecision;

/** Builds the CORS policy for exact origins, or any origin with `*`; same-origin requests always pass. */
export function createCorsPolicy(allowedOrigins: readonly string[]): CorsPolicy {
  const anyOrigin = allowedOrigins.includes("*");
  const origins = new Set(allowedOrigins);
  const allowMethods = [...new Set([...connectCors.allowedMethods, "HEAD", "PUT", "DELETE"])].join(", ");
  const allowHeaders = [...connectCors.allowedHeaders, ...extraAllowedHeaders].join(", ");
  const exposeHeaders = [...connectCors.exposedHeaders, ...extraExposedHeaders].join(", ");
  return (method, header) => {
    const origin = header("origin");
    const authority = header("host") ?? header(":authority");
    // Browsers send Origin on same-origin POSTs too: the web UI served from this port needs no CORS.
    if (origin === undefined || (authority !== undefined && origin === `http://${authority}`)) return { kind: "none" };
    if (!anyOrigin && !origins.has(origin)) return { kind: "denied", origin };
    // Echoing the origin (not "*") keeps credentialed requests working; Vary keeps caches honest.
    const common = { "access-control-allow-origin": origin, vary: "Origin" };
    if (method === "OPTIONS" && header("access-control-request-method") !== undefined) {
      return {
        kind: "preflight",
        headers: {
          ...common,
          "access-control-allow-methods": allowMethods,
          "access-control-allow-headers": allowHeaders,
          "access-control-max-age": String(preflightMaxAgeSeconds),
        },
      };
    }
    return { kind: "actual", headers: { ...common, "access-control-expose-headers": exposeHeaders } };
  };
}
