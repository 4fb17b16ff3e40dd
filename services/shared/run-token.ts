import { createHmac, timingSafeEqual } from "node:crypto";

/** What a run token lets its bearer (a node's sidecar) act as. */
export interface RunTokenClaims {
  readonly runId: string;
  readonly nodeId: string;
  readonly attempt: number;
  /** User who submitted the run; uploads are charged to them. */
  readonly user: string;
  /** Workspace of the run; the sidecar can only touch this workspace. */
  readonly workspace: string;
  /** Expiry, seconds since the epoch. */
  readonly exp: number;
}

const prefix = "mlrun_";

/**
 * Signs and checks run tokens: short-lived credentials the orchestrator hands each node's sidecar so it
 * can download inputs, upload outputs, publish streams and report events for that node only, in the
 * run's workspace. HMAC-SHA256 over the claims, so any replica holding the secret can verify them.
 */
export class RunTokenSigner {
  constructor(private readonly secret: string) {
    if (secret.length < 16) throw new Error("run token secret must be at least 16 characters");
  }

  mint(claims: Omit<RunTokenClaims, "exp">, ttlSeconds: number): string {
    const payload = Buffer.from(
      JSON.stringify({ ...claims, exp: Math.floor(Date.now() / 1000) + ttlSeconds }),
    ).toString("base64url");
    return `${prefix}${payload}.${this.sign(payload)}`;
  }

  /** The claims of a valid, unexpired token; undefined for anything else. */
  verify(token: string): RunTokenClaims | undefined {
    if (!token.startsWith(prefix)) return undefined;
    const [payload, signature] = token.slice(prefix.length).split(".");
    if (!payload || !signature) return undefined;
    const expected = Buffer.from(this.sign(payload));
    const given = Buffer.from(signature);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return undefined;
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as RunTokenClaims;
    return claims.exp > Date.now() / 1000 ? claims : undefined;
  }

  static isRunToken(token: string): boolean {
    return token.startsWith(prefix);
  }

  private sign(payload: string): string {
    return createHmac("sha256", this.secret).update(payload).digest("base64url");
  }
}
