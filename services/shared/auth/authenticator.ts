import { hash } from "node:crypto";
import type { Principal } from "../principal.js";
import { RunTokenSigner } from "../run-token.js";
import type { ApiKeyEntry } from "./api-keys.js";
import { permissionsOf } from "./roles.js";

/** Turns a bearer credential into a principal: API keys for people and programs, run tokens for sidecars. */
export class Authenticator {
  // Keyed by the key's sha256: a lookup's timing then says nothing about how close a guess was.
  private readonly byDigest = new Map<string, Principal>();

  constructor(
    keys: readonly ApiKeyEntry[],
    private readonly runTokens: RunTokenSigner,
  ) {
    for (const entry of keys) {
      this.byDigest.set(digest(entry.key), {
        user: entry.user,
        workspace: entry.workspace,
        roles: entry.roles,
        permissions: permissionsOf(entry.roles),
      });
    }
  }

  /** The principal for an `Authorization` header value, or undefined when it names nobody. */
  authenticate(authorization: string | null | undefined): Principal | undefined {
    const token = /^Bearer\s+(\S+)$/i.exec(authorization ?? "")?.[1];
    if (!token) return undefined;
    if (RunTokenSigner.isRunToken(token)) {
      const claims = this.runTokens.verify(token);
      if (!claims) return undefined;
      return {
        user: claims.user,
        workspace: claims.workspace,
        roles: ["run"],
        permissions: permissionsOf(["run"]),
        run: { runId: claims.runId, nodeId: claims.nodeId, attempt: claims.attempt },
      };
    }
    return this.byDigest.get(digest(token));
  }
}

// The one-shot form: no Hash object per call, which on the unary fast path is a measurable share of the work.
function digest(key: string): string {
  return hash("sha256", key, "hex");
}
