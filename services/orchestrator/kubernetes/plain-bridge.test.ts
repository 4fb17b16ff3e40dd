import { describe, expect, it } from "vitest";
import { agentCommandOf, plainBridgeCommand } from "./plain-bridge.js";

describe("agentCommandOf", () => {
  it("keeps a plain command as it is, even one with its own --", () => {
    expect(agentCommandOf(["python3", "agent.py", "--", "x"])).toEqual(["python3", "agent.py", "--", "x"]);
  });

  it("drops a local sidecar wrapper in front of the agent", () => {
    expect(agentCommandOf(["node", "--import", "tsx", "agent-sidecar/main.ts", "--", "node", "a.mjs"])).toEqual(["node", "a.mjs"]);
    expect(agentCommandOf(["/usr/local/bin/agent-sidecar", "--", "bin/agent"])).toEqual(["bin/agent"]);
  });
});

describe("plainBridgeCommand", () => {
  it("is undefined without a command, and for a sidecar wrapper around nothing", () => {
    expect(plainBridgeCommand([])).toBeUndefined();
    expect(plainBridgeCommand(["agent-sidecar", "--"])).toBeUndefined();
  });
});
