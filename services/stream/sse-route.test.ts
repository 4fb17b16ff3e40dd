import { describe, expect, it } from "vitest";
import { PinType } from "../../gen/mentatlab/v1/common_pb.js";
import { testPrincipal } from "../../test/support/in-memory.js";
import type { Principal } from "../shared/principal.js";
import type { StreamRuntime } from "./index.js";
import { clientFor, runtimesClosedAfterEach, sseText, within } from "./testing.js";

const runtime = runtimesClosedAfterEach();

function get(
  r: StreamRuntime,
  path: string,
  options: { principal?: Principal | null; headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<Response> {
  const route = r.routes.find((candidate) => path.startsWith(candidate.pathPrefix) && candidate.method === "GET");
  if (!route) throw new Error(`no route for ${path}`);
  const principal = options.principal === null ? undefined : (options.principal ?? testPrincipal());
  return route.handle(new Request(`http://127.0.0.1${path}`, { headers: options.headers }), {
    principal,
    signal: options.signal ?? AbortSignal.timeout(10_000),
  });
}

interface SseEvent {
  id: string;
  event: string;
  data: string;
}

function parseSse(body: string): SseEvent[] {
  return body
    .split("\n\n")
    .filter((block) => block.trim() !== "" && !block.startsWith(":"))
    .map((block) => {
      const lines = block.split("\n");
      const field = (name: string) => lines.filter((l) => l.startsWith(`${name}: `)).map((l) => l.slice(name.length + 2));
      return { id: field("id")[0] ?? "", event: field("event")[0] ?? "", data: field("data").join("\n") };
    });
}

const utf8 = (s: string) => new TextEncoder().encode(s);

async function textStream(r: StreamRuntime, payloads: string[], close = true): Promise<string> {
  const client = clientFor(r);
  const id = (await client.initStream({ payloadType: PinType.TEXT })).stream?.ref?.streamId ?? "";
  await client.publishBatch({ streamId: id, payloads: payloads.map((p) => ({ data: utf8(p) })) });
  if (close) await client.closeStream({ streamId: id });
  return id;
}

describe("GET /streams/{id}/events", () => {
  it("serves a text stream as named events with seq ids, multi-line text intact", async () => {
    const r = await runtime();
    const id = await textStream(r, ["hello", "line one\nline two"]);
    const response = await get(r, `/streams/${id}/events`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(response.headers.get("cache-control")).toContain("no-cache");
    const events = parseSse(await response.text());
    expect(events.map((e) => [e.id, e.event])).toEqual([
      ["1", "stream_start"],
      ["2", "stream_data"],
      ["3", "stream_data"],
      ["4", "stream_end"],
    ]);
    expect(JSON.parse(events[0]?.data ?? "{}").ref.streamId).toBe(id);
    expect(events[1]?.data).toBe("hello");
    expect(events[2]?.data).toBe("line one\nline two");
    expect(JSON.parse(events[3]?.data ?? "{}")).toEqual({ lastDataSeq: "3", totalBytes: "22" });
  });

  it("sends binary payloads as base64 and stream_error as JSON", async () => {
    const r = await runtime();
    const client = clientFor(r);
    const id = (await client.initStream({ payloadType: PinType.BINARY })).stream?.ref?.streamId ?? "";
    await client.publishBatch({ streamId: id, payloads: [{ data: new Uint8Array([0, 1, 2, 250]) }] });
    await client.closeStream({ streamId: id, errorMessage: "source lost" });
    const events = parseSse(await (await get(r, `/streams/${id}/events`)).text());
    expect(events[1]).toEqual({ id: "2", event: "stream_data", data: Buffer.from([0, 1, 2, 250]).toString("base64") });
    expect(events[2]?.event).toBe("stream_error");
    expect(JSON.parse(events[2]?.data ?? "{}")).toEqual({ message: "source lost", code: "aborted" });
  });

  it("resumes after Last-Event-ID, which wins over ?after_seq, and answers 204 past the end", async () => {
    const r = await runtime();
    const id = await textStream(r, ["a", "b", "c"]);
    const fromQuery = parseSse(await (await get(r, `/streams/${id}/events?after_seq=3`)).text());
    expect(fromQuery.map((e) => e.id)).toEqual(["4", "5"]);
    const fromHeader = parseSse(await (await get(r, `/streams/${id}/events?after_seq=1`, { headers: { "Last-Event-ID": "2" } })).text());
    expect(fromHeader.map((e) => e.data)).toEqual(["b", "c", expect.stringContaining("lastDataSeq")]);
    const done = await get(r, `/streams/${id}/events`, { headers: { "Last-Event-ID": "5" } });
    expect(done.status).toBe(204);
  });

  it("follows a live stream, sending keep-alive comments while it is idle", async () => {
    const r = await runtime({ sseKeepaliveMs: 50 });
    const id = await textStream(r, ["first"], false);
    const response = await get(r, `/streams/${id}/events`);
    const sse = sseText(response);
    const readUntil = (needle: string) => sse.until(needle);
    await readUntil("data: first");
    await readUntil(": keepalive");
    await clientFor(r).publishBatch({ streamId: id, payloads: [{ data: utf8("second") }] });
    await readUntil("data: second");
    await clientFor(r).closeStream({ streamId: id });
    await readUntil("event: stream_end");
    expect((await sse.next()).done).toBe(true);
  });

  it("answers at once when resuming an idle open stream at its newest event, then follows it", async () => {
    const r = await runtime();
    const id = await textStream(r, ["first"], false);
    const response = await within(get(r, `/streams/${id}/events`, { headers: { "Last-Event-ID": "2" } }), 1_000, "headers");
    expect(response.status).toBe(200);
    const reader = response.body?.pipeThrough(new TextDecoderStream()).getReader();
    if (!reader) throw new Error("no body");
    await clientFor(r).publishBatch({ streamId: id, payloads: [{ data: utf8("next") }] });
    const { value } = await within(reader.read(), 5_000, "next event");
    expect(value).toBe("id: 3\nevent: stream_data\ndata: next\n\n");
    await reader.cancel();
  });

  it("requires a bearer principal with stream:subscribe and scopes streams to its workspace", async () => {
    const r = await runtime();
    const id = await textStream(r, ["secret"]);
    expect((await get(r, `/streams/${id}/events`, { principal: null })).status).toBe(401);
    const noPermission = testPrincipal({ permissions: new Set(["storage:upload"]) });
    expect((await get(r, `/streams/${id}/events`, { principal: noPermission })).status).toBe(403);
    const foreign = await get(r, `/streams/${id}/events`, { principal: testPrincipal({ workspace: "ws-other" }) });
    expect(foreign.status).toBe(404);
    expect(await foreign.text()).not.toContain("secret");
    expect((await get(r, `/streams/${id}/nope`)).status).toBe(404);
  });

  it("answers 400 with a JSON error for a malformed or out-of-range resume point", async () => {
    const r = await runtime();
    const id = await textStream(r, ["a"]);
    const malformed = await get(r, `/streams/${id}/events`, { headers: { "Last-Event-ID": "abc" } });
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toMatchObject({ code: "invalid_argument", message: expect.stringContaining("Last-Event-ID") });
    const past = await get(r, `/streams/${id}/events?after_seq=99`);
    expect(past.status).toBe(400);
    expect(await past.json()).toMatchObject({ code: "out_of_range" });
  });
});
