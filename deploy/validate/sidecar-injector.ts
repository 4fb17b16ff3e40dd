import type { V1MutatingWebhookConfiguration, V1Service } from "@kubernetes/client-node";
import { injectLabel } from "../../services/webhook/injection.js";
import { healthPath, mutatePath } from "../../services/webhook/server.js";
import { podSpecOf, type KubeObject } from "./kube-object.js";

const name = "mentatlab-sidecar-injector";
const find = (objects: readonly KubeObject[], kind: string) => objects.find((o) => o.kind === kind && o.metadata?.name === name);

/** cert-manager's kinds, which kubernetes-models has no schema for: the fields these manifests rely on. */
interface Certificate {
  readonly spec?: {
    readonly secretName?: string;
    readonly dnsNames?: readonly string[];
    readonly issuerRef?: { readonly name?: string; readonly kind?: string };
  };
}

/**
 * Why the injection webhook's objects do not fit together: the MutatingWebhookConfiguration reaches
 * the Service's port and the server's path, selects only labelled pods, and the Deployment serves
 * `mentatlab serve webhook` with the TLS files from the Secret the Certificate (when present) writes.
 * `namespace` is the rendered namespace, to check the cert-manager names that kustomize cannot rewrite.
 */
export function sidecarInjectorProblems(objects: readonly KubeObject[], namespace?: string): string[] {
  const problems: string[] = [];
  const config = find(objects, "MutatingWebhookConfiguration") as unknown as V1MutatingWebhookConfiguration | undefined;
  const service = find(objects, "Service") as unknown as V1Service | undefined;
  const deployment = find(objects, "Deployment");
  const pod = deployment && podSpecOf(deployment);
  const container = pod?.containers[0];
  if (!config || !service || !pod || !container) return [`${name}: needs a MutatingWebhookConfiguration, a Service and a Deployment`];

  for (const webhook of config.webhooks ?? []) {
    const at = `webhook ${webhook.name}`;
    const target = webhook.clientConfig.service;
    if (target?.name !== name || target.path !== mutatePath)
      problems.push(`${at}: must call Service ${name} at ${mutatePath}, not ${target?.name} ${target?.path}`);
    const port = service.spec?.ports?.find((p) => p.port === (target?.port ?? 443));
    if (!port) problems.push(`${at}: Service ${name} has no port ${target?.port ?? 443}`);
    else if (!container.ports?.some((p) => p.name === port.targetPort || p.containerPort === port.targetPort))
      problems.push(`Service ${name}: targetPort ${port.targetPort} is no port of the webhook container`);
    if (JSON.stringify(webhook.admissionReviewVersions) !== JSON.stringify(["v1"])) problems.push(`${at}: admissionReviewVersions must be [v1]`);
    if (webhook.sideEffects !== "None") problems.push(`${at}: sideEffects must be None (dry-run safe)`);
    if (webhook.failurePolicy !== "Fail" && webhook.failurePolicy !== "Ignore") problems.push(`${at}: failurePolicy must be set`);
    if (webhook.objectSelector?.matchLabels?.[injectLabel] !== "true") problems.push(`${at}: objectSelector must match ${injectLabel}: "true"`);
    if (!webhook.namespaceSelector?.matchExpressions?.length && !webhook.namespaceSelector?.matchLabels) problems.push(`${at}: needs a namespaceSelector`);
    if (!webhook.rules?.some((r) => r.operations?.includes("CREATE") && r.resources?.includes("pods"))) problems.push(`${at}: must intercept pod CREATE`);
    if (namespace !== undefined && target?.namespace !== namespace) problems.push(`${at}: calls namespace ${target?.namespace}, not ${namespace}`);
  }
  if (JSON.stringify(container.args) !== JSON.stringify(["serve", "webhook"])) problems.push(`Deployment ${name}: args must be serve webhook`);
  if (container.readinessProbe?.httpGet?.path !== healthPath || container.readinessProbe.httpGet.scheme !== "HTTPS")
    problems.push(`Deployment ${name}: readiness must GET ${healthPath} over HTTPS`);
  const env = Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value ?? ""]));
  const tlsMount = container.volumeMounts?.find(
    (m) => env["MENTATLAB_WEBHOOK_TLS_CERT_FILE"]?.startsWith(`${m.mountPath}/`) && env["MENTATLAB_WEBHOOK_TLS_KEY_FILE"]?.startsWith(`${m.mountPath}/`),
  );
  const tlsSecret = pod.volumes?.find((v) => v.name === tlsMount?.name)?.secret?.secretName;
  if (!tlsSecret) problems.push(`Deployment ${name}: the TLS cert and key files must be in a mounted Secret`);

  const certificate = find(objects, "Certificate") as Certificate | undefined;
  if (certificate) {
    if (certificate.spec?.secretName !== tlsSecret)
      problems.push(`Certificate ${name}: writes ${certificate.spec?.secretName}, the webhook mounts ${tlsSecret}`);
    const issuer = certificate.spec?.issuerRef;
    if (!objects.some((o) => o.kind === (issuer?.kind ?? "Issuer") && o.metadata?.name === issuer?.name))
      problems.push(`Certificate ${name}: no ${issuer?.kind} ${issuer?.name}`);
    if (namespace !== undefined) {
      const host = `${name}.${namespace}.svc`;
      if (!certificate.spec?.dnsNames?.includes(host)) problems.push(`Certificate ${name}: dnsNames lack ${host}, the name the API server calls`);
      const injectFrom = config.metadata?.annotations?.["cert-manager.io/inject-ca-from"];
      if (injectFrom !== `${namespace}/${name}`)
        problems.push(`MutatingWebhookConfiguration ${name}: cert-manager.io/inject-ca-from is ${injectFrom}, not ${namespace}/${name}`);
    }
  }
  return problems;
}

/** The Secrets cert-manager writes: present in the cluster once issued, never in the manifests. */
export function certificateSecrets(objects: readonly KubeObject[]): Set<string> {
  return new Set(
    objects.filter((o) => o.kind === "Certificate").flatMap((o) => ((o as Certificate).spec?.secretName ? [(o as Certificate).spec?.secretName ?? ""] : [])),
  );
}
