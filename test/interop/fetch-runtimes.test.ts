import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { Redis } from "ioredis";
import { request as httpRequest } from "node:http";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { PinType } from "../../gen/mentatlab/v1/common_pb.js";
import { OrchestratorService, RunState } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { AgentRegistryService } from "../../gen/mentatlab/v1/registry_pb.js";
import { StorageService } from "../../gen/mentatlab/v1/storage_pb.js";
import { StreamService } from "../../gen/mentatlab/v1/stream_pb.js";
import { testAgentManifest } from "../../services/orchestrator/testing.js";
import { sseText } from "../../services/stream/testing.js";
import type { MeshClients } from "../e2e/support/clients.js";
import { failureOf, followRun, oneNodeFlow } from "../e2e/support/runs.js";
import { launchChromium, type RedisServer, s3Env, type S3Server, startRedis, startS3 } from "../harness/index.js";
import { expectPageCallsSucceed, expectPageRefusedByCors, startInteropPageServer, type InteropPageServer } from "./browser-page.js";
import { bufCurl, expectBufCurlDownload, expectBufCurlUnauthenticated, firstMessage, messages } from "./buf-curl-support.js";
import { expectHealthServing, expectUsageAndDownload, withAuthorization } from "./connect-node-calls.js";
import { fetchRuntimes, runtimeShutdownGraceMs, startRuntimeTarget, type RuntimeTarget } from "./runtime-target.js";
import { expectedUsage } from "./target.js";

// The embedded mesh started with `npm run serve:bun` / `serve:deno`'s command, driven by the same
// clients as the Node server's interop suite, over the protocols a Fetch-API runtime can serve.

/** The schema buf curl reads: reflection is a bidi stream, which needs HTTP/2 end to end. */
const bufSchema = ["--schema", "."];
/** buf curl's arguments for the Connect protocol with that schema. */
const connectMode = [...bufSchema, "--protocol", "connect"];

/**
 * A producer opens a stream; a key without stream:subscribe is refused its SSE view (403), a consumer
 * follows it and sees a payload published after it started, then the stream's end.
 */
async function expectLiveSseFollow(target: RuntimeTarget): Promise<void> {
  const producer = createConnectTransport({ baseUrl: target.url, httpVersion: "1.1", interceptors: [withAuthorization(target.roleKeys.producer)] });
  const streams = createClient(StreamService, producer);
  const init = await streams.initStream({ payloadType: PinType.TEXT, mimeType: "text/plain" });
  const streamId = init.stream?.ref?.streamId ?? "";
  const eventsUrl = `${target.url}/streams/${streamId}/events`;
  expect((await fetch(eventsUrl, { headers: { authorization: target.roleKeys.producer } })).status).toBe(403);

  const response = await fetch(eventsUrl, { headers: { authorization: target.roleKeys.consumer } });
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toContain("text/event-stream");
  const sse = sseText(response);
  await sse.until("event: stream_start");
  // Published after the subscriber is following: it arrives live, not from the retained buffer.
  await streams.publishBatch({ streamId, payloads: [{ data: new TextEncoder().encode("a live token") }] });
  await sse.until("event: stream_data\ndata: a live token\n");
  await streams.closeStream({ streamId });
  await sse.until("event: stream_end");
}

describe.each(fetchRuntimes)("the embedded mesh on %s", (runtime) => {
  let target: RuntimeTarget;
  let pageServer: InteropPageServer;
  let browser: Browser;
  beforeAll(async () => {
    pageServer = await startInteropPageServer();
    target = await startRuntimeTarget(runtime, { corsAllowedOrigins: [pageServer.url] });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await target?.close();
    await pageServer?.close();
  });

  const transports: Record<string, (authorization: string) => Transport> = {
    "Connect, JSON": (authorization) => createConnectTransport({ baseUrl: target.url, httpVersion: "1.1", interceptors: [withAuthorization(authorization)] }),
    "Connect, binary": (authorization) =>
      createConnectTransport({ baseUrl: target.url, httpVersion: "1.1", useBinaryFormat: true, interceptors: [withAuthorization(authorization)] }),
    "gRPC-web": (authorization) => createGrpcWebTransport({ baseUrl: target.url, httpVersion: "1.1", interceptors: [withAuthorization(authorization)] }),
  };

  describe.each(Object.keys(transports))("connect-node client, %s", (name) => {
    const make = (authorization = target.authorization) => transports[name]!(authorization);

    it("calls Health.Check and Health.Watch", () => expectHealthServing(make()));

    it("calls StorageService.GetUsage (unary) and Download (server streaming) with a key", () => expectUsageAndDownload(make(), target));

    it("gets UNAUTHENTICATED without a key, PERMISSION_DENIED for a role without the permission, INVALID_ARGUMENT for a bad request", async () => {
      const anonymous = createClient(StorageService, make(""));
      await expect(anonymous.getUsage({})).rejects.toMatchObject({ code: Code.Unauthenticated });
      const consumer = createClient(StorageService, make(target.roleKeys.consumer));
      await expect(consumer.createUpload({ header: { mimeType: "text/plain", sizeBytes: 1n } })).rejects.toMatchObject({
        code: Code.PermissionDenied,
        rawMessage: expect.stringContaining("storage:upload"),
      });
      const admin = createClient(StorageService, make());
      await expect(admin.uploadChunk({ uploadId: "", offset: 0n, data: new Uint8Array(1) })).rejects.toMatchObject({
        code: Code.InvalidArgument,
        rawMessage: expect.stringContaining("upload_id"),
      });
    });
  });

  it("runs a flow: the orchestrator starts a local agent process and its output comes back over WatchRun", async () => {
    const transport = transports["Connect, JSON"]!(target.authorization);
    const clients: MeshClients = {
      storage: createClient(StorageService, transport),
      streams: createClient(StreamService, transport),
      orchestrator: createClient(OrchestratorService, transport),
      registry: createClient(AgentRegistryService, transport),
    };
    const agent = `org.test.echo.${runtime}`;
    await clients.registry.registerAgent({
      source: {
        source: { case: "text", value: testAgentManifest(agent, "echo.mjs", "inputs: [{name: text, type: text}]\noutputs: [{name: text, type: text}]") },
      },
    });
    const { run: submitted } = await clients.orchestrator.submitFlow({
      source: { source: { case: "text", value: oneNodeFlow(`echo-${runtime}`, { id: "echo", agent, params: { suffix: ` on ${runtime}` } }) } },
      inputs: { "echo.text": { value: { case: "text", value: "hello" } } },
    });
    const { run } = await followRun(clients, submitted?.runId ?? "");
    expect(run.state, failureOf(run)).toBe(RunState.SUCCEEDED);
    expect(run.outputs["echo.text"]?.value).toEqual({ case: "text", value: `hello on ${runtime}` });
  });

  it("answers an undecodable binary request INVALID_ARGUMENT, not INTERNAL", async () => {
    const response = await fetch(`${target.url}/mentatlab.v1.StorageService/GetUsage`, {
      method: "POST",
      headers: { "content-type": "application/proto", authorization: target.authorization },
      body: new Uint8Array([0xff, 0xff, 0xff]),
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ code: "invalid_argument", message: expect.stringContaining("could not be decoded") });
  });

  it("answers native gRPC with a clear refusal where the runtime speaks h2c, and fails it fast where it does not", async () => {
    const health = createClient(Health, createGrpcTransport({ baseUrl: target.url }));
    const started = Date.now();
    const failure = await health.check({ service: "" }).then(
      () => undefined,
      (error: unknown) => ConnectError.from(error),
    );
    expect(Date.now() - started).toBeLessThan(5_000);
    // Deno's server speaks HTTP/2 without TLS, so the call arrives and is refused in gRPC's own terms;
    // Bun's speaks HTTP/1.1 only, so the gRPC client cannot even open its HTTP/2 connection.
    if (runtime === "deno") {
      expect(failure).toMatchObject({ code: Code.Unimplemented, rawMessage: expect.stringContaining("native gRPC is not served on this runtime") });
    } else {
      expect(failure?.rawMessage).toMatch(/protocol error/i);
    }
  });

  describe("buf curl --protocol connect", () => {
    it("calls Health.Check, and Health.Watch over gRPC-web", async () => {
      const check = await bufCurl([...connectMode, "-d", "{}", `${target.url}/grpc.health.v1.Health/Check`]);
      expect(messages(check)).toEqual([{ status: "SERVING" }]);
      const watched = await firstMessage([...bufSchema, "--protocol", "grpcweb", "-d", '{"service":""}', `${target.url}/grpc.health.v1.Health/Watch`]);
      expect(watched).toEqual({ status: "SERVING" });
    });

    it("calls StorageService.GetUsage and Download with an Authorization header", async () => {
      const key = ["-H", `Authorization: ${target.authorization}`];
      const usage = await bufCurl([...connectMode, ...key, "-d", "{}", `${target.url}/mentatlab.v1.StorageService/GetUsage`]);
      expect(messages(usage)).toEqual([expect.objectContaining(expectedUsage)]);
      await expectBufCurlDownload(target, connectMode);
    });

    it("gets UNAUTHENTICATED without a key", () => expectBufCurlUnauthenticated(target, connectMode));
  });

  describe("headless Chromium with @connectrpc/connect-web, cross-origin", () => {
    it("calls Health.Check/Watch and StorageService.GetUsage/Download over Connect and gRPC-web", () =>
      expectPageCallsSucceed(browser, pageServer.url, target));

    it("is refused by CORS from an origin that is not allowed", () =>
      expectPageRefusedByCors(browser, pageServer.url.replace("127.0.0.1", "localhost"), target));
  });

  describe("plain-HTTP routes", () => {
    const mediaUrl = () => `${target.url}/media/${target.workspace}/${target.object.refId}`;

    it("serves media with Range, ETag and HEAD, to a key holding storage:download", async () => {
      const whole = await fetch(mediaUrl(), { headers: { authorization: target.roleKeys.consumer } });
      expect(whole.status).toBe(200);
      expect(whole.headers.get("etag")).toContain(target.object.sha256);
      expect(await whole.text()).toBe(target.object.text);
      const ranged = await fetch(mediaUrl(), { headers: { authorization: target.roleKeys.consumer, range: "bytes=6-9" } });
      expect(ranged.status).toBe(206);
      expect(ranged.headers.get("content-range")).toBe(`bytes 6-9/${target.object.text.length}`);
      expect(await ranged.text()).toBe(target.object.text.slice(6, 10));
      const head = await fetch(mediaUrl(), { method: "HEAD", headers: { authorization: target.roleKeys.consumer } });
      expect(head.status).toBe(200);
      expect(head.headers.get("content-length")).toBe(String(target.object.text.length));
      expect(await head.text()).toBe("");
    });

    it("refuses media without a key (401) and to a key without storage:download (403 naming it)", async () => {
      expect((await fetch(mediaUrl())).status).toBe(401);
      const producer = await fetch(mediaUrl(), { headers: { authorization: target.roleKeys.producer } });
      expect(producer.status).toBe(403);
      expect(await producer.text()).toContain("storage:download");
    });

    it("follows a live stream over Server-Sent Events, and refuses a key without stream:subscribe", () => expectLiveSseFollow(target));

    it("serves the Prometheus scrape endpoint", async () => {
      const response = await fetch(`${target.url}/metrics`);
      expect(response.status).toBe(200);
      expect(await response.text()).toContain("# HELP target_info");
    });

    it("answers a WebSocket upgrade with 501 naming what to use instead", async () => {
      // fetch() refuses to send Upgrade itself; node:http sends it as a browser would.
      const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const upgrade = httpRequest(`${target.url}/streams/st_x/ws`, { headers: { connection: "Upgrade", upgrade: "websocket" } }, (response) => {
          let body = "";
          response.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
          response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
        });
        upgrade.once("upgrade", () => reject(new Error("the runtime accepted a WebSocket upgrade")));
        upgrade.once("error", reject);
        upgrade.end();
      });
      expect(answer.status).toBe(501);
      expect(answer.body).toContain("Server-Sent Events");
    });
  });

  it("on SIGTERM lets an open SSE follow run for the grace period, then ends it and exits 0", async () => {
    const streams = createClient(StreamService, transports["Connect, JSON"]!(target.roleKeys.producer));
    const init = await streams.initStream({ payloadType: PinType.TEXT, mimeType: "text/plain" });
    const response = await fetch(`${target.url}/streams/${init.stream?.ref?.streamId ?? ""}/events`, { headers: { authorization: target.roleKeys.consumer } });
    const sse = sseText(response);
    await sse.until("event: stream_start");
    const started = Date.now();
    const stopped = target.stop();
    // The stream never ends by itself: only the end of the grace period ends it (a clean end or a cut connection).
    await (async () => {
      while (!(await sse.next()).done);
    })().catch(() => undefined);
    const endedAfter = Date.now() - started;
    expect(endedAfter).toBeGreaterThanOrEqual(runtimeShutdownGraceMs - 250);
    expect(await stopped).toEqual({ code: 0, signal: null });
    expect(Date.now() - started).toBeLessThan(runtimeShutdownGraceMs + 5_000);
    expect(target.output()).toContain("SIGTERM: shutting down gracefully");
  });
});

describe.each(fetchRuntimes)("the embedded mesh on %s with Redis and S3 (REDIS_URL, S3_ENDPOINT)", (runtime) => {
  let redis: RedisServer;
  let s3: S3Server;
  let target: RuntimeTarget;
  beforeAll(async () => {
    [redis, s3] = await Promise.all([startRedis(), startS3()]);
    // Starting stores the interop object: through this runtime's S3 client, into the S3 server.
    target = await startRuntimeTarget(runtime, { env: { REDIS_URL: redis.url, ...s3Env(s3) } });
  });
  afterAll(async () => {
    await target?.close();
    await s3?.stop();
    await redis?.stop();
  });

  it("stores and serves objects in S3", async () => {
    await expectUsageAndDownload(
      createConnectTransport({ baseUrl: target.url, httpVersion: "1.1", interceptors: [withAuthorization(target.authorization)] }),
      target,
    );
    const s3Client = new S3Client(s3.clientConfig);
    try {
      const listed = await s3Client.send(new ListObjectsV2Command({ Bucket: s3.bucket }));
      expect(listed.KeyCount ?? 0).toBeGreaterThan(0);
    } finally {
      s3Client.destroy();
    }
  });

  it("follows a live stream held in Redis over Server-Sent Events", async () => {
    await expectLiveSseFollow(target);
    const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await client.connect();
      expect(await client.keys("ml:stream:*")).not.toEqual([]);
    } finally {
      client.disconnect();
    }
  });
});
