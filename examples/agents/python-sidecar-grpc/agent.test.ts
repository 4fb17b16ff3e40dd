import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { toJson } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PinValueSchema } from "../../../gen/mentatlab/v1/common_pb.js";
import { loadSidecarConfig } from "../../../agent-sidecar/config.js";
import { createGatewayClients, createGatewayTransport } from "../../../agent-sidecar/gateway-clients.js";
import { runAgentWithSidecar } from "../../../agent-sidecar/sidecar.js";
import { startDataPlane, type DataPlane } from "../../../agent-sidecar/testing.js";

const agent = fileURLToPath(new URL("./agent.py", import.meta.url));

describe("Python agent on the sidecar's gRPC API (Debian python3-grpcio)", () => {
  let dir: string;
  let plane: DataPlane;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "py-grpc-"));
    plane = await startDataPlane(join(dir, "data"));
  });
  afterAll(async () => {
    await plane?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it.each([
    ["a unix socket", ""],
    ["a loopback port", "127.0.0.1:0"],
  ])("streams words live and publishes outputs over %s", async (_how, listen) => {
    const nodeId = listen ? "tcp" : "unix";
    const config = loadSidecarConfig({
      MENTATLAB_RUN_ID: "run-py",
      MENTATLAB_NODE_ID: nodeId,
      MENTATLAB_GATEWAY_URL: plane.url,
      MENTATLAB_RUN_TOKEN: plane.runToken("run-py", nodeId),
      MENTATLAB_SHARED_DIR: join(dir, nodeId),
      MENTATLAB_SIDECAR_LISTEN: listen,
      MENTATLAB_INPUTS_JSON: JSON.stringify({ text: { text: "Sidecars speak gRPC too" } }),
      MENTATLAB_OUTPUT_PINS_JSON: '{"words": "stream", "upper": "text", "letters": "json"}',
    });
    const outcome = await runAgentWithSidecar(config, ["/usr/bin/python3", agent], {
      baseEnv: { PATH: process.env.PATH, HOME: process.env.HOME, MENTATLAB_PYTHON_STUBS: join(dir, "stubs") },
    });
    expect(outcome.failure).toBeUndefined();
    expect(outcome.outputs.upper?.value).toEqual({ case: "text", value: "SIDECARS SPEAK GRPC TOO" });
    expect(toJson(PinValueSchema, outcome.outputs.letters!)).toEqual({ json: { a: 2, c: 2, d: 1, e: 2, g: 1, i: 1, k: 1, o: 2, p: 2, r: 2, s: 3, t: 1 } });

    const words = outcome.outputs.words?.value;
    if (words?.case !== "stream") throw new Error("no word stream");
    const clients = createGatewayClients(createGatewayTransport(plane.url, plane.runToken("run-py", "reader")));
    const received: string[] = [];
    for await (const event of clients.stream.subscribe({ streamId: words.value.streamId })) {
      if (event.event.case === "data") received.push(Buffer.from(event.event.value.data).toString("utf8"));
      if (event.event.case === "end") break;
    }
    expect(received).toEqual(["Sidecars\n", "speak\n", "gRPC\n", "too\n"]);
    const progress = plane.reported.filter((event) => event.event.case === "progress" && event.event.value.message === "streamed 4 words");
    expect(progress.length).toBeGreaterThanOrEqual(1);
  });
});
