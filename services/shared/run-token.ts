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
 * Claims signed with HMAC-SHA256 and an expiry, as `<prefix><base64url claims>.<signature>`: any
 * replica holding the key can verify them. Each kind of token signs with its own key, so one kind can
 * never be passed off as another.
 */
export class SignedClaims<Claims extends { readonly exp: number }> {
  constructor(
    private readonly key: string | Buffer,
    private readonly prefix: string,
  ) {}

  mint(claims: Omit<Claims, "exp">, ttlSeconds: number): string {
    const payload = Buffer.from(JSON.stringify({ ...claims, exp: Math.floor(Date.now() / 1000) + ttlSeconds })).toString("base64url");
    return `${this.prefix}${payload}.${this.sign(payload)}`;
  }

  /** The claims of a valid, unexpired token; undefined for anything else. */
  verify(token: string): Claims | undefined {
    if (!token.startsWith(this.prefix)) return undefined;
    const [payload, signature] = token.slice(this.prefix.length).split(".");
    if (!payload || !signature) return undefined;
    const expected = Buffer.from(this.sign(payload));
    const given = Buffer.from(signature);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return undefined;
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as Claims;
    return claims.exp > Date.now() / 1000 ? claims : undefined;
  }

  private sign(payload: string): string {
    return createHmac("sha256", this.key).update(payload).digest("base64url");
  }
}

/** Shortest secret run tokens may be signed with. */
export const minTokenSecretLength = 16;

/**
 * Signs and checks run tokens: short-lived credentials the orchestrator hands each node's sidecar so it
 * can download inputs, upload outputs, publish streams and report events for that node only, in the
 * run's workspace.
 */
export class RunTokenSigner {
  private readonly tokens: SignedClaims<RunTokenClaims>;

  constructor(secret: string) {
    if (secret.length < minTokenSecretLength) throw new Error(`run token secret must be at least ${minTokenSecretLength} characters`);
    this.tokens = new SignedClaims(secret, prefix);
  }

  mint(claims: Omit<RunTokenClaims, "exp">, ttlSeconds: number): string {
    return this.tokens.mint(claims, ttlSeconds);
  }

  /** The claims of a valid, unexpired token; undefined for anything else. */
  verify(token: string): RunTokenClaims | undefined {
    return this.tokens.verify(token);
  }

  static isRunToken(token: string): boolean {
    return token.startsWith(prefix);
  }
}
