import { create } from "@bufbuild/protobuf";
import { PinType, PinValueSchema } from "../../../gen/mentatlab/v1/common_pb.js";
import { AgentManifestSchema, PinSchema, ResourceProfile } from "../../../gen/mentatlab/v1/registry_pb.js";
import { calculateResources } from "../../registry/resources.js";
import type { NodeTask } from "../executor.js";
import { type KubernetesExecutorConfig, kubernetesExecutorConfigFromEnv } from "./config.js";

/** A recognisable run token, so tests can search Job specs for it. */
export const testRunToken = "rt.secret-run-token-0123456789";

/** A node attempt of a small agent with one text input and one text output. */
export function testTask(overrides: Partial<NodeTask> & { profile?: ResourceProfile } = {}): NodeTask {
  const { profile = ResourceProfile.TEXT_PROCESSING, ...rest } = overrides;
  const agent = create(AgentManifestSchema, {
    id: "dev.mentatlab.echo",
    version: "1.0.0",
    image: "registry.example/echo:1.0.0",
    runtime: "node",
    resourceProfile: profile,
    env: { LOG_LEVEL: "debug" },
    inputs: [create(PinSchema, { name: "text", type: PinType.TEXT, required: true })],
    outputs: [create(PinSchema, { name: "echo", type: PinType.TEXT })],
  });
  return {
    runId: "run_00abc1234f00dfeedbeef1234",
    nodeId: "echo_Node",
    attempt: 1,
    workspace: "ws-alpha",
    user: "user-1",
    agent,
    params: { shout: true },
    inputs: { text: create(PinValueSchema, { value: { case: "text", value: "hello" } }) },
    outputStreams: {},
    resources: calculateResources(agent, 0),
    timeoutMs: 90_500,
    runToken: testRunToken,
    ...rest,
  };
}

export function testConfig(overrides: Partial<KubernetesExecutorConfig> = {}): KubernetesExecutorConfig {
  return { ...kubernetesExecutorConfigFromEnv({ MENTATLAB_K8S_NAMESPACE: "agents", MENTATLAB_SIDECAR_IMAGE: "mentatlab/agent-sidecar:test" }), ...overrides };
}
