import { describe, expect, it } from "vitest";
import { websocketConfigFromEnv } from "./websocket-config.js";

describe("websocketConfigFromEnv", () => {
  it("needs nothing: pings every 15 s, tickets good for a minute, URLs from the request", () => {
    expect(websocketConfigFromEnv({})).toEqual({ pingMs: 15_000, ticketSeconds: 60, publicUrl: undefined });
  });

  it("reads every setting, dropping a trailing slash from the public URL", () => {
    expect(websocketConfigFromEnv({ STREAM_WS_PING_SECONDS: "0.5", STREAM_WS_TICKET_SECONDS: "30", MENTATLAB_PUBLIC_URL: "https://mesh.example/" })).toEqual({
      pingMs: 500,
      ticketSeconds: 30,
      publicUrl: "https://mesh.example",
    });
  });

  it("names the variable that holds a bad value", () => {
    expect(() => websocketConfigFromEnv({ STREAM_WS_PING_SECONDS: "0" })).toThrow(/STREAM_WS_PING_SECONDS/);
    expect(() => websocketConfigFromEnv({ STREAM_WS_TICKET_SECONDS: "0.5" })).toThrow(/STREAM_WS_TICKET_SECONDS.*"0.5"/);
  });
});
