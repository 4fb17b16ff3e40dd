import { createHmac, timingSafeEqual } from "node:crypto";

/** The one spelling of an expiry this service writes: decimal seconds, no sign, no leading zero. */
const CANONICAL_EXPIRES = /^[1-9][0-9]{0,15}$/;

/** Signs and checks the `expires`/`sig` query of presigned media GET URLs. */
export class UrlSigner {
  constructor(private readonly secret: string) {}

  private mac(workspace: string, refId: string, expires: string): string {
    return createHmac("sha256", this.secret).update(`GET\n${workspace}\n${refId}\n${expires}`).digest("base64url");
  }

  sign(workspace: string, refId: string, expires: number): string {
    return this.mac(workspace, refId, String(expires));
  }

  /**
   * True for an unexpired signature made by `sign` for exactly this object. `expires` is the query
   * text as sent: only the spelling `sign` produced is accepted (not hex, `1e9`, `.0` or padding), so
   * one link has one form and a cache keyed on URLs cannot be handed variants of it.
   */
  verify(workspace: string, refId: string, expires: string, signature: string, nowSeconds = Date.now() / 1000): boolean {
    if (!CANONICAL_EXPIRES.test(expires) || Number(expires) <= nowSeconds) return false;
    const expected = Buffer.from(this.mac(workspace, refId, expires));
    const given = Buffer.from(signature);
    return expected.length === given.length && timingSafeEqual(expected, given);
  }
}
