import { createServer as createHttp1Server } from "node:http";
import { createServer as createHttp2Server, connect as http2Connect } from "node:http2";
import { connect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listenOnePort, type OnePortListener } from "./one-port.js";

const http1 = createHttp1Server((req, res) => res.end(`h1 ${req.url}`));
const http2 = createHttp2Server((req, res) => res.end(`h2 ${req.url}`));
let listener: OnePortListener;
beforeAll(async () => {
  listener = await listenOnePort("127.0.0.1", 0, http1, http2);
});
afterAll(async () => {
  listener.closeGracefully();
  await listener.waitForConnections(1_000);
  await listener.stopAccepting();
});

/** Writes `pieces` with a pause between them (so they arrive as separate reads) and returns the reply. */
async function sendInPieces(pieces: string[]): Promise<string> {
  const socket: Socket = connect({ host: "127.0.0.1", port: listener.port });
  await new Promise((resolve) => socket.once("connect", resolve));
  const reply = new Promise<string>((resolve) => {
    let text = "";
    socket.on("data", (chunk) => (text += chunk.toString()));
    socket.once("close", () => resolve(text));
  });
  for (const piece of pieces) {
    socket.write(piece);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return reply;
}

describe("listenOnePort", () => {
  it("hands HTTP/1.1 to the http server even when the first read is a prefix of the HTTP/2 preface", async () => {
    const reply = await sendInPieces(["P", "OST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"]);
    expect(reply).toMatch(/^HTTP\/1\.1 200/);
    expect(reply).toContain("h1 /a");
  });

  it("hands prior-knowledge HTTP/2 to the http2 server", async () => {
    const session = http2Connect(`http://127.0.0.1:${listener.port}`);
    try {
      const stream = session.request({ ":path": "/b" });
      let body = "";
      for await (const chunk of stream) body += String(chunk);
      expect(body).toBe("h2 /b");
    } finally {
      session.close();
    }
  });
});
