import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initStream, StreamSocket, ticketFor } from "../support/stream-websocket.js";
import { type DistributedMesh, startDistributedMesh } from "./support/distributed-mesh.js";

const producer = "dist-ws-producer-0123456789";
const consumer = "dist-ws-consumer-0123456789";

describe("streams over WebSocket through the distributed gateway", () => {
  let mesh: DistributedMesh;
  beforeAll(async () => {
    mesh = await startDistributedMesh("dist-ws-admin-0123456789", {
      moreApiKeys: [`${producer}=pat@acme:multimodal_producer`, `${consumer}=carl@acme:multimodal_consumer`],
    });
  }, 90_000);
  afterAll(async () => {
    await mesh?.close();
  });

  it("POST /streams/init at the gateway hands out gateway URLs; publish, follow and resume pass through to the stream process", async () => {
    const init = await initStream(mesh.url, producer, { payload_type: "PIN_TYPE_AUDIO", mime_type: "audio/webm;codecs=opus" });
    const gateway = new URL(mesh.url);
    expect(new URL(init.ws_url).host).toBe(gateway.host);
    expect(init.sse_url).toBe(`${mesh.url}/streams/${init.stream_id}/events`);

    const publisher = await StreamSocket.open(init.ws_url);
    publisher.sendJson({ type: "stream_start" });
    expect(await publisher.nextText()).toEqual({ type: "ack", last_seq: 1, last_client_seq: 0 });
    const follower = await StreamSocket.open((await ticketFor(mesh.url, consumer, init.stream_id)).ws_url);
    follower.sendJson({ type: "subscribe" });
    expect(await follower.nextText()).toMatchObject({ type: "stream_start", seq: 1 });
    const chunk = Buffer.alloc(8 * 1024, 1);
    for (let n = 1; n <= 20; n++) {
      publisher.sendJson({ type: "stream_data", client_seq: n });
      publisher.sendBinary(chunk);
    }
    for (;;) if (((await publisher.until("ack")).last_client_seq as number) === 20) break;
    let received = 0;
    while (received < 10) if ("binary" in (await follower.next())) received++;
    follower.ws.terminate();

    // The follower comes back after seq 11 (its 10th payload) and misses nothing.
    const resumed = await StreamSocket.open((await ticketFor(mesh.url, consumer, init.stream_id)).ws_url);
    resumed.sendJson({ type: "subscribe", after_seq: 11 });
    publisher.sendJson({ type: "stream_end" });
    expect((await publisher.drain()).close.code).toBe(1000);
    const { frames, close } = await resumed.drain();
    expect(frames.filter((f) => "binary" in f)).toHaveLength(10);
    expect(frames.at(-1)).toMatchObject({ text: { type: "stream_end", seq: 22 } });
    expect(close.code).toBe(1000);
  });

  it("the stream process still refuses a caller without credentials, with 4016 through the gateway", async () => {
    const init = await initStream(mesh.url, producer, { payload_type: "PIN_TYPE_TEXT" });
    const socket = await StreamSocket.open(`${mesh.url.replace("http", "ws")}/streams/${init.stream_id}/ws`);
    socket.sendJson({ type: "stream_start" });
    expect((await socket.drain()).close.code).toBe(4016);
  });
});
