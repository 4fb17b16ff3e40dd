import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PinType } from "../gen/mentatlab/v1/common_pb.js";
import { createGatewayClients, createGatewayTransport, type GatewayClients } from "./gateway-clients.js";
import { StreamRelay } from "./stream-relay.js";
import { startDataPlane, type DataPlane } from "./testing.js";

/** Chunk `n` of a test stream: its number in the first 4 bytes, then a pattern derived from it. */
function chunk(n: number, size: number): Uint8Array {
  const data = new Uint8Array(size);
  new DataView(data.buffer).setUint32(0, n);
  for (let i = 4; i < size; i++) data[i] = (n * 31 + i) & 0xff;
  return data;
}

describe("StreamRelay against the real StreamService", () => {
  let dir: string;
  let plane: DataPlane;
  let clients: GatewayClients;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "relay-"));
    plane = await startDataPlane(join(dir, "data"));
    clients = createGatewayClients(createGatewayTransport(plane.url, plane.runToken("run-1", "tts")));
  });
  afterAll(async () => {
    await plane?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function openStream(): Promise<string> {
    const response = await clients.stream.initStream({ payloadType: PinType.AUDIO, mimeType: "audio/wav", runId: "run-1", nodeId: "tts", pin: "audio" });
    return response.stream?.ref?.streamId ?? "";
  }

  async function received(streamId: string): Promise<{ data: Uint8Array[]; ended: boolean }> {
    const data: Uint8Array[] = [];
    for await (const event of clients.stream.subscribe({ streamId, afterSeq: 0n })) {
      if (event.event.case === "data") data.push(event.event.value.data);
      if (event.event.case === "end") return { data, ended: true };
      if (event.event.case === "error") return { data, ended: false };
    }
    return { data, ended: false };
  }

  it("relays every chunk once, in order, through a gateway crash, spilling to disk meanwhile", async () => {
    const streamId = await openStream();
    const spillPath = join(dir, "crash.spill");
    const relay = new StreamRelay(clients.stream, streamId, {
      memoryBytes: 32 * 1024,
      capacityBytes: 64 * 1024 * 1024,
      spillPath,
      backoff: { initialMs: 20, maxMs: 200 },
      giveUpMs: 30_000,
    });
    const total = 300;
    const size = 8 * 1024;
    for (let n = 1; n <= 100; n++) await relay.write(chunk(n, size));
    await plane.kill();
    // Written while the gateway is down: past the 32 KiB memory bound these go to the spill file.
    for (let n = 101; n <= 200; n++) await relay.write(chunk(n, size));
    expect((await stat(spillPath)).size).toBeGreaterThan(0);
    expect(relay.acknowledged).toBeLessThan(200n);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await plane.restart();
    for (let n = 201; n <= total; n++) await relay.write(chunk(n, size));
    expect(await relay.finish()).toBe(BigInt(total));
    expect(relay.reconnectCount).toBeGreaterThanOrEqual(1);

    const { data, ended } = await received(streamId);
    expect(ended).toBe(true);
    expect(data.length).toBe(total);
    data.forEach((bytes, index) => expect(Buffer.from(bytes).equals(Buffer.from(chunk(index + 1, size)))).toBe(true));
    await expect(stat(spillPath)).rejects.toThrow();
  });

  it("makes the writer wait at capacity instead of growing without bound while the gateway is down", async () => {
    const streamId = await openStream();
    const relay = new StreamRelay(clients.stream, streamId, {
      memoryBytes: 8 * 1024,
      capacityBytes: 64 * 1024,
      spillPath: join(dir, "bounded.spill"),
      backoff: { initialMs: 20, maxMs: 100 },
      giveUpMs: 30_000,
    });
    await relay.write(chunk(1, 8 * 1024));
    await plane.kill();
    let written = 1;
    const writer = (async () => {
      for (let n = 2; n <= 20; n++) {
        await relay.write(chunk(n, 8 * 1024));
        written = n;
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(written).toBeLessThanOrEqual(9);
    await plane.restart();
    await writer;
    expect(await relay.finish()).toBe(20n);
    expect((await received(streamId)).data.length).toBe(20);
  });

  it("gives up after the gateway stayed away too long, and still ends the stream with stream_error", async () => {
    const streamId = await openStream();
    const relay = new StreamRelay(clients.stream, streamId, {
      memoryBytes: 1024 * 1024,
      capacityBytes: 1024 * 1024,
      spillPath: join(dir, "give-up.spill"),
      backoff: { initialMs: 20, maxMs: 100 },
      giveUpMs: 200,
    });
    await plane.kill();
    await relay.write(chunk(1, 100));
    const finished = relay.finish();
    finished.catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 400));
    await plane.restart();
    await expect(finished).rejects.toMatchObject({ code: Code.Unavailable });
    const events: string[] = [];
    for await (const event of clients.stream.subscribe({ streamId })) {
      events.push(event.event.case === "error" ? `error: ${event.event.value.message}` : String(event.event.case));
      if (event.event.case === "end" || event.event.case === "error") break;
    }
    expect(events).toEqual(["start", expect.stringMatching(/^error: output stream relay failed: /)]);
  });

  it("ends the stream with stream_error when finished with an error message", async () => {
    const streamId = await openStream();
    const relay = new StreamRelay(clients.stream, streamId, {
      memoryBytes: 1024 * 1024,
      capacityBytes: 1024 * 1024,
      spillPath: join(dir, "error.spill"),
      backoff: { initialMs: 20, maxMs: 100 },
      giveUpMs: 5_000,
    });
    await relay.write(chunk(1, 100));
    await relay.finish("agent crashed");
    const { data, ended } = await received(streamId);
    expect(ended).toBe(false);
    expect(data.length).toBe(1);
  });
});
