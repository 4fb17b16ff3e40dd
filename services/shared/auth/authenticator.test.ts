import { describe, expect, it } from "vitest";
import { RunTokenSigner } from "../run-token.js";
import { Authenticator } from "./authenticator.js";

const signer = new RunTokenSigner("0123456789abcdef0123456789abcdef");
const authenticator = new Authenticator([{ key: "key-aaaaaaaaaaaaaaaa", user: "alice", workspace: "acme", roles: ["multimodal_consumer"] }], signer);

describe("Authenticator", () => {
  it("maps an API key to its user, workspace and role permissions", () => {
    const principal = authenticator.authenticate("Bearer key-aaaaaaaaaaaaaaaa");
    expect(principal?.user).toBe("alice");
    expect(principal?.workspace).toBe("acme");
    expect([...(principal?.permissions ?? [])].sort()).toEqual(["agent:view", "flow:view_results", "storage:download", "stream:subscribe"]);
  });

  it("rejects unknown keys and malformed headers", () => {
    expect(authenticator.authenticate("Bearer key-zzzzzzzzzzzzzzzz")).toBeUndefined();
    expect(authenticator.authenticate("key-aaaaaaaaaaaaaaaa")).toBeUndefined();
    expect(authenticator.authenticate(undefined)).toBeUndefined();
  });

  it("accepts a run token scoped to its run, node and workspace", () => {
    const token = signer.mint({ runId: "r1", nodeId: "n1", attempt: 2, user: "alice", workspace: "acme" }, 60);
    const principal = authenticator.authenticate(`Bearer ${token}`);
    expect(principal?.run).toEqual({ runId: "r1", nodeId: "n1", attempt: 2 });
    expect(principal?.permissions.has("flow:report")).toBe(true);
    expect(principal?.permissions.has("agent:register")).toBe(false);
  });

  it("rejects tampered, foreign and expired run tokens", () => {
    const token = signer.mint({ runId: "r1", nodeId: "n1", attempt: 1, user: "alice", workspace: "acme" }, 60);
    const [head, sig] = token.split(".");
    const forged = Buffer.from(JSON.stringify({ runId: "r1", nodeId: "n1", attempt: 1, user: "alice", workspace: "other", exp: 9e9 })).toString("base64url");
    expect(authenticator.authenticate(`Bearer mlrun_${forged}.${sig}`)).toBeUndefined();
    expect(authenticator.authenticate(`Bearer ${head}.${sig}x`)).toBeUndefined();
    const foreign = new RunTokenSigner("another-secret-another-secret").mint({ runId: "r1", nodeId: "n1", attempt: 1, user: "alice", workspace: "acme" }, 60);
    expect(authenticator.authenticate(`Bearer ${foreign}`)).toBeUndefined();
    const expired = signer.mint({ runId: "r1", nodeId: "n1", attempt: 1, user: "alice", workspace: "acme" }, -1);
    expect(authenticator.authenticate(`Bearer ${expired}`)).toBeUndefined();
  });
});
