import { readFileSync } from "node:fs";
import { get } from "node:https";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";
import { makeTempDir, spawnManaged } from "../../test/harness/index.js";
import { makeLoopbackCertificate } from "./testing.js";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const tsx = join(repoRoot, "node_modules", ".bin", "tsx");

function serveWebhook(env: Record<string, string>) {
  return spawnManaged(tsx, ["services/cli/main.ts", "serve", "webhook"], { cwd: repoRoot, env: { ...process.env, MENTATLAB_WEBHOOK_PORT: "0", ...env } });
}

it("mentatlab serve webhook serves over TLS from its files and stops on SIGTERM", async () => {
  const dir = makeTempDir("serve-webhook");
  makeLoopbackCertificate(dir);
  const webhook = serveWebhook({ MENTATLAB_WEBHOOK_TLS_CERT_FILE: join(dir, "tls.crt"), MENTATLAB_WEBHOOK_TLS_KEY_FILE: join(dir, "tls.key") });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = "";
      webhook.child.stdout?.on("data", (chunk: Buffer) => {
        out += chunk.toString("utf8");
        const match = /serving AdmissionReviews on (https:\/\/\S+)\/mutate/.exec(out);
        if (match?.[1]) resolve(match[1]);
      });
      void webhook.exited.then(() => reject(new Error(`exited early:\n${webhook.output()}`)));
      setTimeout(() => reject(new Error(`not serving:\n${webhook.output()}`)), 30_000);
    });
    const status = await new Promise<number>((resolve, reject) => {
      get(`${url}/healthz`, { ca: readFileSync(join(dir, "tls.crt")) }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on("error", reject);
    });
    expect(status).toBe(200);
  } finally {
    expect(await webhook.terminate("SIGTERM", 10_000)).toEqual({ code: 0, signal: null });
  }
}, 45_000);

it("mentatlab serve webhook without its certificate says which file, in one line, and exits 1", async () => {
  const webhook = serveWebhook({ MENTATLAB_WEBHOOK_TLS_CERT_FILE: "/nonexistent/tls.crt" });
  let stderr = "";
  webhook.child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  expect((await webhook.exited).code).toBe(1);
  expect(stderr).toMatch(/^mentatlab: MENTATLAB_WEBHOOK_TLS_CERT_FILE: cannot read \/nonexistent\/tls\.crt \(ENOENT[^\n]*\)\n$/);
}, 45_000);
