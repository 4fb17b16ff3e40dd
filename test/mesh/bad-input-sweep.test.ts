import type { DescMethod } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OrchestratorService } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { AgentRegistryService } from "../../gen/mentatlab/v1/registry_pb.js";
import { StorageService } from "../../gen/mentatlab/v1/storage_pb.js";
import { StreamService } from "../../gen/mentatlab/v1/stream_pb.js";
import { startEmbedded, type EmbeddedMesh } from "../../services/mesh/embedded.js";
import { makeTempDir, removeTempDir } from "../harness/index.js";
import { malformedMessages, type MalformedMessage } from "./support/malformed-messages.js";
import { envelope, Http1Caller, Http2Caller, statusOf, type CallStatus, type Protocol, type RawCall } from "./support/raw-rpc.js";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const apiKey = "mlk_bad_input_sweep_0123456789";
/** The mesh's public services; SidecarService is pod-local, served by each agent's sidecar. */
const services = [StorageService, StreamService, AgentRegistryService, OrchestratorService];
/** Over the default 8 MiB read limit. */
const oversizeBytes = 9 * 1024 * 1024;
const concurrency = 16;
const maxGetQueryBytes = 8 * 1024;

interface Case {
  readonly protocol: Protocol;
  readonly transport: "h2" | "h1";
  readonly label: string;
  readonly call: RawCall;
}

const auth = { authorization: `Bearer ${apiKey}` };
const isStreaming = (method: DescMethod) => method.methodKind !== "unary";
const getAble = (method: DescMethod) => method.methodKind === "unary" && method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS;
const pathOf = (method: DescMethod) => `/${method.parent.typeName}/${method.name}`;
const bidiPaths = new Set(services.flatMap((s) => s.methods.filter((m) => m.methodKind === "bidi_streaming").map(pathOf)));

/** The same message in every protocol that carries its encoding. */
function casesFor(method: DescMethod, message: MalformedMessage): Case[] {
  const path = pathOf(method);
  const post = (protocol: Protocol, transport: "h2" | "h1", headers: Record<string, string>, body: Uint8Array): Case => ({
    protocol,
    transport,
    label: message.label,
    call: { path, method: "POST", headers: { ...auth, ...headers }, body },
  });
  const framed = envelope(0, message.bytes);
  const out: Case[] = [];
  const connect = (transport: "h2" | "h1", codec: "proto" | "json") =>
    isStreaming(method)
      ? post("connect-stream", transport, { "content-type": `application/connect+${codec}`, "connect-protocol-version": "1" }, framed)
      : post("connect-unary", transport, { "content-type": `application/${codec}`, "connect-protocol-version": "1" }, message.bytes);
  if (message.encoding === "binary") {
    out.push(post("grpc", "h2", { "content-type": "application/grpc+proto", te: "trailers" }, framed));
    out.push(post("grpc-web", "h1", { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" }, framed));
    out.push(connect("h2", "proto"), connect("h1", "proto"));
  } else {
    out.push(post("grpc-web", "h1", { "content-type": "application/grpc-web+json", "x-grpc-web": "1" }, framed));
    out.push(connect("h1", "json"), connect("h2", "json"));
  }
  const query = `connect=v1&encoding=${message.encoding === "binary" ? "proto" : "json"}&base64=1&message=${Buffer.from(message.bytes).toString("base64url")}`;
  // Node's HTTP parser refuses request heads over 16 KiB (HTTP 431) before any RPC code runs; such
  // messages are swept by POST above.
  if (getAble(method) && query.length <= maxGetQueryBytes) {
    out.push({
      protocol: "connect-unary",
      transport: "h1",
      label: `GET ${message.label}`,
      call: { path, method: "GET", query, headers: auth, body: new Uint8Array() },
    });
  }
  return out;
}

/** Framing gone wrong in the enveloped protocols, and bad base64 for Connect GET. */
function framingCases(method: DescMethod, withOversizeBody: boolean): Case[] {
  const path = pathOf(method);
  const enveloped: [Protocol, "h2" | "h1", Record<string, string>][] = [
    ["grpc", "h2", { "content-type": "application/grpc+proto", te: "trailers" }],
    ["grpc-web", "h1", { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" }],
    ...(isStreaming(method)
      ? [
          ["connect-stream", "h1", { "content-type": "application/connect+proto", "connect-protocol-version": "1" }] satisfies [
            Protocol,
            "h1",
            Record<string, string>,
          ],
        ]
      : []),
  ];
  const out: Case[] = [];
  for (const [protocol, transport, headers] of enveloped) {
    const bodies: [string, Uint8Array][] = [
      ["envelope declares 100 bytes, holds 3", envelope(0, new Uint8Array([1, 2, 3]), 100)],
      ["envelope header cut short", new Uint8Array([0, 0, 0])],
      ["compressed flag without an encoding", envelope(1, new Uint8Array([0x0a, 0x00]))],
      [`envelope declares ${oversizeBytes} bytes`, envelope(0, new Uint8Array(16), oversizeBytes)],
    ];
    if (withOversizeBody) bodies.push([`a ${oversizeBytes}-byte message`, envelope(0, new Uint8Array(oversizeBytes).fill(0x0a))]);
    for (const [label, body] of bodies) out.push({ protocol, transport, label, call: { path, method: "POST", headers: { ...auth, ...headers }, body } });
    const gzipNamed = { ...auth, ...headers, [protocol === "connect-stream" ? "connect-content-encoding" : "grpc-encoding"]: "gzip" };
    out.push({
      protocol,
      transport,
      label: "gzip named, bytes not gzip",
      call: { path, method: "POST", headers: gzipNamed, body: envelope(1, new Uint8Array([1, 2, 3, 4])) },
    });
  }
  if (!isStreaming(method)) {
    const headers = { ...auth, "content-type": "application/proto", "connect-protocol-version": "1" };
    if (withOversizeBody)
      out.push({
        protocol: "connect-unary",
        transport: "h1",
        label: `a ${oversizeBytes}-byte unary body`,
        call: { path, method: "POST", headers, body: new Uint8Array(oversizeBytes) },
      });
  }
  if (getAble(method)) {
    for (const bad of ["%25%25%25", "a", "====", "YWJj*", "%F0%9F%98%80"]) {
      out.push({
        protocol: "connect-unary",
        transport: "h1",
        label: `GET base64 ${bad}`,
        call: { path, method: "GET", query: `connect=v1&encoding=proto&base64=1&message=${bad}`, headers: auth, body: new Uint8Array() },
      });
    }
  }
  return out;
}

function allCases(): Case[] {
  const out: Case[] = [];
  let seed = 1;
  for (const service of services) {
    service.methods.forEach((method, index) => {
      for (const message of malformedMessages(method.input, seed++)) out.push(...casesFor(method, message));
      out.push(...framingCases(method, index === 0));
    });
  }
  return out;
}

interface Outcome {
  readonly case: Case;
  readonly status: CallStatus;
}

describe("thousands of malformed requests over every public RPC in every protocol", () => {
  let mesh: EmbeddedMesh;
  let dataDir: string;
  const outcomes: Outcome[] = [];

  beforeAll(async () => {
    dataDir = makeTempDir("bad-input-sweep-");
    mesh = await startEmbedded({
      port: 0,
      dataDir,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, MENTATLAB_API_KEYS: `${apiKey}=sweeper@ws-sweep:admin` },
    });
    const h2 = new Http2Caller(mesh.url);
    const h1 = new Http1Caller(mesh.url);
    try {
      const queue = allCases();
      const worker = async () => {
        for (let next = queue.shift(); next; next = queue.shift()) {
          const response = await (next.transport === "h2" ? h2 : h1).call(next.call);
          outcomes.push({ case: next, status: "failed" in response ? { missing: response.failed } : statusOf(next.protocol, response) });
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
    } finally {
      h2.close();
      h1.close();
    }
  }, 120_000);

  afterAll(async () => {
    await mesh?.close();
    if (dataDir) removeTempDir(dataDir);
  });

  const describeCase = ({ case: c, status }: Outcome) =>
    `${c.protocol}/${c.transport} ${c.call.method} ${c.call.path} [${c.label}]: ${"missing" in status ? status.missing : `${Code[status.code]} ${status.message.slice(0, 300)}`}`;

  it("covers every public method in every protocol, thousands of times", () => {
    expect(outcomes.length).toBeGreaterThan(3000);
    const byCode = new Map<string, number>();
    for (const { status } of outcomes) {
      const key = !("code" in status) ? "no status" : status.code === 0 ? "OK" : (Code[status.code] ?? String(status.code));
      byCode.set(key, (byCode.get(key) ?? 0) + 1);
    }
    console.info(`bad-input sweep: ${outcomes.length} requests`, Object.fromEntries(byCode));
    const methods = new Set(outcomes.map((o) => o.case.call.path));
    expect(methods.size).toBe(services.reduce((n, s) => n + s.methods.length, 0));
    const protocols = new Set(outcomes.map((o) => `${o.case.protocol}/${o.case.transport}${o.case.call.method === "GET" ? "/GET" : ""}`));
    expect([...protocols].sort()).toEqual([
      "connect-stream/h1",
      "connect-stream/h2",
      "connect-unary/h1",
      "connect-unary/h1/GET",
      "connect-unary/h2",
      "grpc-web/h1",
      "grpc/h2",
    ]);
  });

  /** connect-node serves bidi streams over HTTP/2 only and refuses them on HTTP/1.1 with HTTP 505. */
  const bidiOverHttp1 = (o: Outcome) => o.case.transport === "h1" && bidiPaths.has(o.case.call.path);

  it("answers every one with a status", () => {
    expect(outcomes.filter((o) => !bidiOverHttp1(o) && "missing" in o.status).map(describeCase)).toEqual([]);
  });

  it("refuses bidi streams over HTTP/1.1 with HTTP 505, whatever the body", () => {
    const refused = outcomes.filter(bidiOverHttp1);
    expect(refused.length).toBeGreaterThan(50);
    expect(refused.filter((o) => !("missing" in o.status && o.status.missing.startsWith("HTTP 505"))).map(describeCase)).toEqual([]);
  });

  it("answers none with Unknown or Internal", () => {
    const bad = outcomes.filter((o) => "code" in o.status && (o.status.code === Code.Unknown || o.status.code === Code.Internal));
    expect(bad.map(describeCase)).toEqual([]);
  });

  it("names no server path in any message", () => {
    const leaks = outcomes.filter((o) => "message" in o.status && (o.status.message.includes(dataDir) || o.status.message.includes(repo)));
    expect(leaks.map(describeCase)).toEqual([]);
  });
});
