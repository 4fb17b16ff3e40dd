import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { admissionResponse, parseAdmissionReview, podBeingCreated } from "./admission-review.js";
import type { WebhookConfig } from "./config.js";
import { decideInjection } from "./injection.js";

/** Where the API server posts reviews (the MutatingWebhookConfiguration's clientConfig.service.path). */
export const mutatePath = "/mutate";
/** The probes' path. */
export const healthPath = "/healthz";
/** A Pod is at most what etcd stores (~1.5 MiB); the review wraps it with little else. */
const maxBodyBytes = 3 * 1024 * 1024;

export interface RunningWebhook {
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

/**
 * The sidecar injection webhook over TLS: certificate and key read from files (a mounted Secret).
 * Stateless and side-effect free, so a dry-run review gets the same answer and changes nothing.
 */
export async function startWebhook(config: WebhookConfig): Promise<RunningWebhook> {
  let tls = readTls(config);
  const server = createServer({ ...tls, minVersion: "TLSv1.2" }, (req, res) => {
    handle(req, res, config).catch((err: unknown) =>
      reply(res, 500, { message: `mentatlab sidecar injector: ${err instanceof Error ? err.message : String(err)}` }),
    );
  });
  // cert-manager renews the Secret and the kubelet swaps the mounted files: new connections get the new pair.
  const reload = setInterval(() => {
    try {
      const next = readTls(config);
      if (next.cert.equals(tls.cert) && next.key.equals(tls.key)) return;
      server.setSecureContext({ ...next, minVersion: "TLSv1.2" });
      tls = next;
      console.log(`mentatlab sidecar injector: serving the renewed certificate from ${config.certFile}`);
    } catch (err) {
      // Half-written files mid-swap, or a bad pair: keep serving the last good one and try again.
      console.error(`mentatlab sidecar injector: could not reload the certificate: ${err instanceof Error ? err.message : String(err)}`);
    }
  }, config.tlsReloadMs);
  reload.unref();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = config.host.includes(":") ? `[${config.host}]` : config.host;
  return {
    url: `https://${host}:${port}`,
    server,
    close: () =>
      new Promise<void>((resolve, reject) => {
        clearInterval(reload);
        server.close((err) => (err ? reject(err) : resolve()));
        // Reviews take microseconds: idle keep-alive connections are all that is left to end.
        server.closeIdleConnections();
      }),
  };
}

async function handle(req: IncomingMessage, res: ServerResponse, config: WebhookConfig): Promise<void> {
  const path = new URL(req.url ?? "/", "https://webhook").pathname;
  if (path === healthPath && req.method === "GET") return reply(res, 200, { status: "ok" });
  if (path !== mutatePath) return reply(res, 404, { message: `no such path: reviews go to POST ${mutatePath}` });
  if (req.method !== "POST") return reply(res, 405, { message: `${req.method} not allowed: POST an AdmissionReview` }, { allow: "POST" });
  const contentType = (req.headers["content-type"] ?? "").split(";")[0]?.trim();
  if (contentType !== "application/json") return reply(res, 415, { message: `Content-Type must be application/json, not "${contentType}"` });
  const body = await readBody(req);
  if (body === undefined) return reply(res, 413, { message: `an AdmissionReview larger than ${maxBodyBytes} bytes is not one the API server sends` });
  const parsed = parseAdmissionReview(body);
  if ("problem" in parsed) return reply(res, 400, { message: `malformed AdmissionReview: ${parsed.problem}` });
  const { request } = parsed;
  const target = podBeingCreated(request);
  const decision = "ignored" in target ? { kind: "ignored" as const, why: target.ignored } : decideInjection(target.pod, config.sidecar);
  reply(res, 200, admissionResponse(request.uid, decision));
}

function readTls(config: WebhookConfig): { cert: Buffer; key: Buffer } {
  return { cert: readSetting("MENTATLAB_WEBHOOK_TLS_CERT_FILE", config.certFile), key: readSetting("MENTATLAB_WEBHOOK_TLS_KEY_FILE", config.keyFile) };
}

function readSetting(variable: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`${variable}: cannot read ${path} (${err instanceof Error ? err.message : String(err)})`);
  }
}

/** The body as text, or undefined once it passes the limit. */
async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  // Read to the end even past the limit, so the client gets the 413 rather than a reset.
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= maxBodyBytes) chunks.push(chunk);
  }
  return size > maxBodyBytes ? undefined : Buffer.concat(chunks).toString("utf8");
}

function reply(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}
