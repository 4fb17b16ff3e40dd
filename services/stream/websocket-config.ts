import { integerVar, numberVar, type Env } from "../shared/env.js";

/** Settings of the WebSocket view of streams (`POST /streams/init`, `/streams/{id}/ws`). */
export interface WebSocketConfig {
  /** How often the server pings; a client that has not answered the previous ping by then is dropped. */
  readonly pingMs: number;
  /** How long a `?ticket=` handed out by `POST /streams/init` or `/streams/{id}/ticket` may be used to connect. */
  readonly ticketSeconds: number;
  /** Base of the URLs handed out (`MENTATLAB_PUBLIC_URL`); unset: the address the request came to. */
  readonly publicUrl: string | undefined;
}

export function websocketConfigFromEnv(env: Env): WebSocketConfig {
  const publicUrl = env.MENTATLAB_PUBLIC_URL?.trim().replace(/\/+$/, "");
  return {
    pingMs: numberVar(env, "STREAM_WS_PING_SECONDS", 15, { exclusiveMin: 0 }) * 1000,
    ticketSeconds: integerVar(env, "STREAM_WS_TICKET_SECONDS", 60, { min: 1 }),
    publicUrl: publicUrl ? publicUrl : undefined,
  };
}
