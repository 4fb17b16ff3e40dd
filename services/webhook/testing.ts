// Test support for the webhook: what an operator makes for the dev path in docs/sidecar-injection.md.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";

/** A throwaway self-signed certificate for the loopback address in `into` (tls.crt, tls.key); returns the certificate. */
export function makeLoopbackCertificate(into: string): Buffer {
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=mentatlab-sidecar-injector",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
      "-keyout",
      join(into, "tls.key"),
      "-out",
      join(into, "tls.crt"),
    ],
    { stdio: "ignore" },
  );
  return readFileSync(join(into, "tls.crt"));
}
