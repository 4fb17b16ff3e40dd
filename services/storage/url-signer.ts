import { createHmac, timingSafeEqual } from "node:crypto";

/** Signs and checks the `expires`/`sig` query of presigned media GET URLs. */
export class UrlSigner {
  constructor(private readonly secret: string) {}

  private mac(workspace: string, refId: string, expires: number): string {
    return createHmac("sha256", this.secret).update(`GET\n${workspace}\n${refId}\n${expires}`).digest("base64url");
  }

  sign(workspace: string, refId: string, expires: number): string {
    return this.mac(workspace, refId, expires);
  }

  /** True for an unexpired signature made by `sign` for exactly this object. */
  verify(workspace: string, refId: string, expires: number, signature: string, nowSeconds = Date.now() / 1000): boolean {
    if (!Number.isSafeInteger(expires) || expires <= nowSeconds) return false;
    const expected = Buffer.from(this.mac(workspace, refId, expires));
    const given = Buffer.from(signature);
    return expected.length === given.length && timingSafeEqual(expected, given);
  }
}
