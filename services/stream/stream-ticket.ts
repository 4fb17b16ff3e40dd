import { createHmac } from "node:crypto";
import { permissionsOf } from "../shared/auth/roles.js";
import type { Principal } from "../shared/principal.js";
import { SignedClaims } from "../shared/run-token.js";

/** What a stream ticket lets its bearer do: act as `user` on one stream, for a short while. */
interface TicketClaims {
  readonly user: string;
  readonly workspace: string;
  readonly roles: readonly string[];
  readonly run?: Principal["run"];
  readonly streamId: string;
  readonly exp: number;
}

/**
 * Short-lived credentials for one stream, carried in a WebSocket URL (`?ticket=`): a browser's
 * WebSocket cannot send an `Authorization` header. A ticket names its caller's roles, so the
 * WebSocket endpoint checks the same permissions as for a bearer key, and only on the stream it names.
 * Signed with a key derived from the mesh's token secret, so every stream replica verifies it and a
 * ticket can never pass for a run token.
 */
export class StreamTicketSigner {
  private readonly tickets: SignedClaims<TicketClaims>;

  constructor(
    tokenSecret: string,
    readonly ttlSeconds: number,
  ) {
    this.tickets = new SignedClaims(createHmac("sha256", tokenSecret).update("mentatlab stream ticket").digest(), "mlst_");
  }

  mint(principal: Principal, streamId: string): string {
    return this.tickets.mint(
      { user: principal.user, workspace: principal.workspace, roles: principal.roles, ...(principal.run ? { run: principal.run } : {}), streamId },
      this.ttlSeconds,
    );
  }

  /** The caller a valid, unexpired ticket stands for and the stream it is good for. */
  verify(ticket: string): { readonly principal: Principal; readonly streamId: string } | undefined {
    const claims = this.tickets.verify(ticket);
    if (!claims) return undefined;
    const principal: Principal = {
      user: claims.user,
      workspace: claims.workspace,
      roles: claims.roles,
      permissions: permissionsOf(claims.roles),
      ...(claims.run ? { run: claims.run } : {}),
    };
    return { principal, streamId: claims.streamId };
  }
}
