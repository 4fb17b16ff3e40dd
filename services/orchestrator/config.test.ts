import { describe, expect, it } from "vitest";
import { orchestratorConfigFromEnv } from "./config.js";

describe("orchestratorConfigFromEnv", () => {
  it("needs no variables and keeps runs and agents in the data dir's database", () => {
    const config = orchestratorConfigFromEnv({}, "/data");
    expect(orchestratorConfigFromEnv({ MENTATLAB_DATABASE: "memory" }, "/data").databaseFile).toBeUndefined();
    expect(config).toMatchObject({
      redisUrl: "",
      databaseFile: "/data/mentatlab.db",
      registryFile: "/data/agents.json",
      maxConcurrentNodes: 8,
      defaultNodeTimeoutMs: 600_000,
      inlineThresholdBytes: 262_144,
      executor: "local",
      memoryLimits: true,
      agentNiceIncrement: 10,
    });
  });

  it("reads every variable", () => {
    const config = orchestratorConfigFromEnv(
      {
        REDIS_URL: "redis://127.0.0.1:1",
        ORCHESTRATOR_REGISTRY_FILE: "none",
        ORCHESTRATOR_MAX_CONCURRENT_NODES: "3",
        ORCHESTRATOR_NODE_TIMEOUT_SECONDS: "1.5",
        ORCHESTRATOR_MEMORY_LIMITS: "false",
        ORCHESTRATOR_AGENT_ENV: "PATH, LANG",
        ORCHESTRATOR_EXECUTOR: "noop",
        ORCHESTRATOR_AGENT_NICE: "0",
      },
      "/data",
    );
    expect(config).toMatchObject({
      redisUrl: "redis://127.0.0.1:1",
      databaseFile: undefined,
      registryFile: undefined,
      maxConcurrentNodes: 3,
      defaultNodeTimeoutMs: 1500,
      memoryLimits: false,
      agentEnvPassthrough: ["PATH", "LANG"],
      executor: "noop",
      agentNiceIncrement: 0,
    });
    expect(orchestratorConfigFromEnv({ MENTATLAB_REDIS_URL: "redis://a", REDIS_URL: "redis://b" }, "/d").redisUrl).toBe("redis://a");
  });

  it("rejects values that make no sense, naming the variable", () => {
    expect(() => orchestratorConfigFromEnv({ ORCHESTRATOR_MAX_CONCURRENT_NODES: "0" }, "/d")).toThrow("ORCHESTRATOR_MAX_CONCURRENT_NODES");
    expect(() => orchestratorConfigFromEnv({ ORCHESTRATOR_EXECUTOR: "k8s" }, "/d")).toThrow("ORCHESTRATOR_EXECUTOR");
    for (const nice of ["-1", "20", "2.5"])
      expect(() => orchestratorConfigFromEnv({ ORCHESTRATOR_AGENT_NICE: nice }, "/d")).toThrow(
        `ORCHESTRATOR_AGENT_NICE must be an integer from 0 to 19, not "${nice}"`,
      );
  });
});
