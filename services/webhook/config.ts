import { kubernetesExecutorConfigFromEnv, type SidecarWiring } from "../orchestrator/kubernetes/index.js";
import { integerVar, portVar, type Env } from "../shared/env.js";

/** Where the injection webhook listens, its TLS files, and the sidecar it injects; every field has a default. */
export interface WebhookConfig {
  /** `MENTATLAB_HOST`, default `127.0.0.1` (`0.0.0.0` in a container). */
  readonly host: string;
  /** `MENTATLAB_WEBHOOK_PORT`, default 8443 (0 = any free port). */
  readonly port: number;
  /** `MENTATLAB_WEBHOOK_TLS_CERT_FILE`, default `/etc/mentatlab/webhook-tls/tls.crt`: PEM certificate (chain), e.g. from a mounted cert-manager Secret. */
  readonly certFile: string;
  /** `MENTATLAB_WEBHOOK_TLS_KEY_FILE`, default `/etc/mentatlab/webhook-tls/tls.key`: its PEM private key. */
  readonly keyFile: string;
  /** `MENTATLAB_WEBHOOK_TLS_RELOAD_MS`, default 60000: how often the files are re-read, so a renewed certificate is served without a restart. */
  readonly tlsReloadMs: number;
  /** The sidecar's image, pull policy and gateway URL: the Kubernetes executor's variables, so injected pods match the Jobs. */
  readonly sidecar: Pick<SidecarWiring, "image" | "imagePullPolicy" | "gatewayUrl">;
}

export function webhookConfigFromEnv(env: Env): WebhookConfig {
  const executor = kubernetesExecutorConfigFromEnv(env);
  return {
    host: env.MENTATLAB_HOST || "127.0.0.1",
    port: portVar(env, "MENTATLAB_WEBHOOK_PORT", 8443),
    certFile: env.MENTATLAB_WEBHOOK_TLS_CERT_FILE || "/etc/mentatlab/webhook-tls/tls.crt",
    keyFile: env.MENTATLAB_WEBHOOK_TLS_KEY_FILE || "/etc/mentatlab/webhook-tls/tls.key",
    tlsReloadMs: integerVar(env, "MENTATLAB_WEBHOOK_TLS_RELOAD_MS", 60_000, { min: 1 }),
    sidecar: { image: executor.sidecarImage, imagePullPolicy: executor.imagePullPolicy, gatewayUrl: executor.gatewayUrl },
  };
}
