import type { V1EnvVar, V1PodSpec, V1Role, V1Service } from "@kubernetes/client-node";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { telemetryConfigFromEnv } from "../services/shared/telemetry/config.js";
import { exportedSeries, metricNames, seriesOf } from "../services/shared/telemetry/metric-names.js";
import { isKubeObject, podSpecOf, validateKubeObject, validatePartialObject, type KubeObject } from "./validate/kube-object.js";
import { findKustomizations, generatedSecretValues, missingPaths, readKustomization } from "./validate/kustomization-files.js";
import { exposedSecrets, literalCredentialEnv, nativeSidecarProblems, rootContainers, unhardenedContainers } from "./validate/pod-rules.js";
import { seriesNamesIn } from "./validate/promql.js";
import { certificateSecrets, sidecarInjectorProblems } from "./validate/sidecar-injector.js";

const here = dirname(fileURLToPath(import.meta.url));
const kustomizeRoot = join(here, "kustomize");
const meshParts = ["gateway", "storage", "stream", "orchestrator"] as const;
const monitoringGroup = "monitoring.coreos.com/v1";
/** Custom resources kubernetes-models has no schema for; their own checks cover them. */
const customGroups = new Set([monitoringGroup, "cert-manager.io/v1"]);
/** The webhook's TLS Secret on the dev overlay's openssl path (docs/sidecar-injection.md): made by hand, never in a manifest. */
const handMadeDevSecrets = ["mentatlab-sidecar-injector-tls"];
/** Kinds without a namespace. */
const clusterScoped = new Set(["Namespace", "MutatingWebhookConfiguration"]);

function documentsOf(text: string, source: string): KubeObject[] {
  return parseAllDocuments(text).flatMap((doc) => {
    if (doc.errors.length > 0) throw new Error(`${source}: ${doc.errors.map((e) => e.message).join("; ")}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return [];
    if (!isKubeObject(value)) throw new Error(`${source}: a document without apiVersion and kind`);
    return [value];
  });
}

const kustomizations = findKustomizations(kustomizeRoot).map((file) => ({ file, k: readKustomization(file) }));
const isFile = (path: string) => existsSync(path) && statSync(path).isFile();
/** Every object a kustomization lists as a resource (patches excluded), plus the reference agent Job. */
const resourceFiles = [
  ...new Set([
    ...kustomizations.flatMap(({ file, k }) => (k.resources ?? []).map((r) => join(dirname(file), r)).filter(isFile)),
    join(kustomizeRoot, "agent-job/job-template.yaml"),
  ]),
];
const resources = resourceFiles.flatMap((file) => documentsOf(readFileSync(file, "utf8"), relative(here, file)));
const patchFiles = kustomizations.flatMap(({ file, k }) => (k.patches ?? []).flatMap((p) => (p.path ? [join(dirname(file), p.path)] : [])));
const secretValues = [...new Set(kustomizations.flatMap(({ file, k }) => generatedSecretValues(file, k)))].filter((v) => v.length >= 8);

const byKind = (objects: readonly KubeObject[], kind: string) => objects.filter((o) => o.kind === kind);
const named = (objects: readonly KubeObject[], kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata?.name === name);
/** Series the telemetry module exports, plus the ones the PrometheusRule records. */
function knownSeries(objects: readonly KubeObject[]): Set<string> {
  const recorded = ruleList(objects).flatMap((rule) => (rule.record ? [rule.record] : []));
  return new Set([...exportedSeries, ...recorded]);
}

interface Rule {
  readonly record?: string;
  readonly alert?: string;
  readonly expr: string;
  readonly labels?: Record<string, string>;
}
function ruleList(objects: readonly KubeObject[]): Rule[] {
  return byKind(objects, "PrometheusRule").flatMap((o) => ((o.spec as { groups: { rules: Rule[] }[] }).groups ?? []).flatMap((g) => g.rules));
}

/** Rules every workload must follow, wherever it comes from. */
function workloadProblems(objects: readonly KubeObject[], secrets: readonly string[]): string[] {
  const workloads = objects.filter((o) => podSpecOf(o) !== undefined);
  return [
    ...workloads.flatMap(rootContainers).map((p) => `may run as root: ${p}`),
    ...workloads
      .flatMap((o) => unhardenedContainers(o, { readOnlyRoot: !(o.kind === "Job" && o.metadata?.name?.startsWith("ml-")) }))
      .map((p) => `not hardened: ${p}`),
    ...workloads.flatMap((o) => exposedSecrets(o, secrets)).map((p) => `secret value in: ${p}`),
    ...workloads.flatMap(literalCredentialEnv).map((p) => `credential as a literal env value: ${p}`),
  ];
}

/** A NetworkPolicy as written in YAML (the client library's model renames `from` to `_from`). */
interface PolicyManifest {
  readonly metadata?: { readonly name?: string };
  readonly spec?: {
    readonly podSelector: { readonly matchLabels?: Record<string, string> };
    readonly ingress?: readonly { readonly from?: readonly unknown[] }[];
  };
}

/** Only the gateway admits traffic from anywhere; every other allowance names its sources. */
function networkPolicyProblems(objects: readonly KubeObject[]): string[] {
  const problems: string[] = [];
  if (!named(objects, "NetworkPolicy", "mentatlab-default-deny-ingress")) problems.push("no default-deny ingress policy");
  for (const policy of byKind(objects, "NetworkPolicy") as unknown as PolicyManifest[]) {
    const component = policy.spec?.podSelector.matchLabels?.["app.kubernetes.io/component"];
    const open = (policy.spec?.ingress ?? []).some((rule) => rule.from === undefined || rule.from.length === 0);
    if (open && component !== "gateway") problems.push(`${policy.metadata?.name}: admits any source to pods other than the gateway`);
  }
  return problems;
}

/** Gateway, storage, stream and orchestrator: the one image, `serve <part>`, gRPC health probes, config from the ConfigMap. */
function meshDeploymentProblems(objects: readonly KubeObject[]): string[] {
  const problems: string[] = [];
  for (const part of meshParts) {
    const deployment = named(objects, "Deployment", `mentatlab-${part}`);
    const pod = deployment && podSpecOf(deployment);
    const container = pod?.containers[0];
    if (!pod || !container) {
      problems.push(`mentatlab-${part}: no Deployment`);
      continue;
    }
    const port = container.ports?.[0]?.containerPort;
    if (JSON.stringify(container.args) !== JSON.stringify(["serve", part])) problems.push(`mentatlab-${part}: args must be serve ${part}`);
    for (const [probe, spec] of [
      ["readiness", container.readinessProbe],
      ["liveness", container.livenessProbe],
    ] as const) {
      if (spec?.grpc?.port === undefined || spec.grpc.port !== port)
        problems.push(`mentatlab-${part}: ${probe} probe must be a native grpc probe on port ${port}`);
    }
    if (!container.envFrom?.some((e) => e.configMapRef?.name?.startsWith("mentatlab-config"))) problems.push(`mentatlab-${part}: no env from mentatlab-config`);
    if (!container.resources?.requests?.cpu || !container.resources.requests.memory || !container.resources.limits?.memory)
      problems.push(`mentatlab-${part}: resources incomplete`);
    const fromSecrets = (container.env ?? []).filter((e: V1EnvVar) => e.valueFrom?.secretKeyRef).map((e) => e.name);
    for (const name of ["MENTATLAB_TOKEN_SECRET", "MENTATLAB_PRESIGN_SECRET"])
      if (!fromSecrets.includes(name)) problems.push(`mentatlab-${part}: ${name} not from a Secret`);
    if (part === "storage")
      for (const name of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"])
        if (!fromSecrets.includes(name)) problems.push(`mentatlab-storage: ${name} not from a Secret`);
  }
  return problems;
}

describe("deploy/kustomize, checked from the files (no kubectl needed)", () => {
  it("every kustomization refers only to files that exist", () => {
    expect(kustomizations.map(({ file }) => relative(kustomizeRoot, file))).toEqual(
      expect.arrayContaining([
        "base/kustomization.yaml",
        "overlays/dev/kustomization.yaml",
        "overlays/prod/kustomization.yaml",
        "monitoring/kustomization.yaml",
      ]),
    );
    expect(kustomizations.flatMap(({ file, k }) => missingPaths(file, k))).toEqual([]);
  });

  it("every built-in resource validates as the API server would (schema, unknown fields, names, labels)", async () => {
    const builtIn = resources.filter((o) => !customGroups.has(o.apiVersion));
    expect(builtIn.length).toBeGreaterThan(25);
    const problems = (await Promise.all(builtIn.map(validateKubeObject))).flat();
    expect(problems).toEqual([]);
  });

  it("patches name only fields that exist", () => {
    const patches = patchFiles.flatMap((file) => documentsOf(readFileSync(file, "utf8"), relative(here, file)));
    expect(patches.length).toBeGreaterThan(5);
    expect(patches.flatMap(validatePartialObject)).toEqual([]);
  });

  it("catches what the schemas alone miss: a misspelt field, a bad name", async () => {
    const [deployment] = documentsOf(readFileSync(join(kustomizeRoot, "base/gateway.yaml"), "utf8"), "gateway");
    if (!deployment) throw new Error("no gateway Deployment");
    const broken = structuredClone(deployment) as KubeObject & { spec: { template: { spec: { containers: Record<string, unknown>[] } } } };
    const container = broken.spec.template.spec.containers[0] as Record<string, unknown>;
    container["readinesProbe"] = container["readinessProbe"];
    const problems = await validateKubeObject({ ...broken, metadata: { name: "Mentatlab_Gateway" } });
    expect(problems.join("\n")).toMatch(/containers\[0\]\.readinesProbe: unknown field/);
    expect(problems.join("\n")).toMatch(/metadata\.name: "Mentatlab_Gateway" must be a DNS-1123 subdomain/);
  });

  it("no container may run as root or keep capabilities, and no secret is written into a manifest", () => {
    expect(secretValues.length).toBeGreaterThan(3);
    expect(workloadProblems(resources, secretValues)).toEqual([]);
  });

  it("the four processes run the one image with gRPC probes and credentials from Secrets", () => {
    expect(meshDeploymentProblems(resources)).toEqual([]);
  });

  it("the orchestrator may create, watch and delete Jobs and read pods and their logs, in its namespace only", () => {
    const role = named(resources, "Role", "mentatlab-orchestrator") as unknown as V1Role | undefined;
    const allows = (resource: string, verb: string) => role?.rules?.some((r) => r.resources?.includes(resource) && r.verbs.includes(verb));
    for (const verb of ["create", "watch", "delete", "list", "get"]) expect(allows("jobs", verb), `jobs ${verb}`).toBe(true);
    for (const verb of ["get", "list", "watch"]) expect(allows("pods", verb), `pods ${verb}`).toBe(true);
    expect(allows("pods/log", "get")).toBe(true);
    expect(byKind(resources, "ClusterRole")).toEqual([]);
    const binding = named(resources, "RoleBinding", "mentatlab-orchestrator") as { subjects?: { name: string }[] } | undefined;
    expect(binding?.subjects?.map((s) => s.name)).toEqual(["mentatlab-orchestrator"]);
  });

  it("the dev overlay's Redis fsyncs every write to an append-only file on its volume before replying", () => {
    const redis = named(resources, "StatefulSet", "mentatlab-redis");
    const container = redis && podSpecOf(redis)?.containers[0];
    const args = container?.args ?? [];
    const setting = (name: string) => args[args.indexOf(`--${name}`) + 1];
    expect([setting("appendonly"), setting("appendfsync")]).toEqual(["yes", "always"]);
    expect(container?.volumeMounts?.find((m) => m.name === "data")?.mountPath).toBe(setting("dir"));
  });

  it("only the gateway is reachable from anywhere", () => {
    expect(networkPolicyProblems(resources)).toEqual([]);
    const services = byKind(resources, "Service") as unknown as V1Service[];
    expect(services.filter((s) => s.spec?.type !== undefined && s.spec.type !== "ClusterIP")).toEqual([]);
  });

  it("the agent Job runs the agent-sidecar as a native sidecar the agent waits for", () => {
    const job = named(resources, "Job", "ml-run-0123abcd-thumbnail-1");
    const pod = job && (podSpecOf(job) as V1PodSpec);
    if (!pod) throw new Error("no reference agent Job");
    expect(nativeSidecarProblems(pod, "sidecar")).toEqual([]);
    expect(nativeSidecarProblems({ ...pod, initContainers: pod.initContainers?.map((c) => ({ ...c, restartPolicy: undefined })) }, "sidecar")).toEqual([
      "sidecar: restartPolicy must be Always (a native sidecar), not unset",
    ]);
  });

  it("the sidecar injection webhook: configuration, Service, Deployment and certificate fit together", () => {
    expect(sidecarInjectorProblems(resources)).toEqual([]);
    const broken = resources.map((o) => {
      if (o.kind === "MutatingWebhookConfiguration")
        return {
          ...o,
          webhooks: (o.webhooks as { clientConfig: { service: object } }[]).map((w) => ({
            ...w,
            sideEffects: "Unknown",
            clientConfig: { service: { ...w.clientConfig.service, path: "/inject" } },
          })),
        };
      if (o.kind === "Certificate") return { ...o, spec: { ...(o.spec as object), secretName: "other-tls" } };
      return o;
    });
    expect(sidecarInjectorProblems(broken)).toEqual([
      "webhook sidecar-injector.mentatlab.io: must call Service mentatlab-sidecar-injector at /mutate, not mentatlab-sidecar-injector /inject",
      "webhook sidecar-injector.mentatlab.io: sideEffects must be None (dry-run safe)",
      "Certificate mentatlab-sidecar-injector: writes other-tls, the webhook mounts mentatlab-sidecar-injector-tls",
    ]);
  });

  it("alert rules read only series the telemetry module exports (or records), with the design's thresholds", () => {
    const rules = ruleList(resources);
    const known = knownSeries(resources);
    for (const rule of rules)
      expect(
        seriesNamesIn(rule.expr).filter((name) => !known.has(name)),
        rule.expr,
      ).toEqual([]);
    const alerts = rules.filter((r) => r.alert);
    expect(alerts.map((a) => [a.labels?.["severity"], seriesNamesIn(a.expr).sort()])).toEqual([
      ["warning", seriesOf(metricNames.storageUsage).concat(metricNames.storageQuota).sort()],
      ["critical", seriesOf(metricNames.streamLatency).filter((s) => s.endsWith("_bucket"))],
    ]);
    expect(alerts[0]?.expr).toMatch(/> 0\.8$/);
    expect(alerts[1]?.expr).toMatch(/^histogram_quantile\(0\.99,.*> 200$/);
    expect(rules.find((r) => r.record === "stream_error_rate")?.expr).toBe("sum(rate(stream_errors_total[5m])) / sum(rate(stream_ends_total[5m]))");
  });

  it("the dashboards are JSON, titled as in the design, and chart every metric by names that exist", () => {
    const monitoring = kustomizations.find(({ file }) => file.endsWith("monitoring/kustomization.yaml"));
    const files = (monitoring?.k.configMapGenerator ?? []).flatMap((g) => g.files ?? []).map((f) => join(kustomizeRoot, "monitoring", f));
    const dashboards = files.map((file) => JSON.parse(readFileSync(file, "utf8")) as { title: string; panels: { targets: { expr: string }[] }[] });
    expect(dashboards.map((d) => d.title).sort()).toEqual(["Multimodal Overview", "Streaming Performance"]);
    const known = knownSeries(resources);
    const charted = new Set<string>();
    for (const expr of dashboards.flatMap((d) => d.panels.flatMap((p) => p.targets.map((t) => t.expr)))) {
      const names = seriesNamesIn(expr);
      expect(
        names.filter((n) => !known.has(n)),
        expr,
      ).toEqual([]);
      for (const n of names) charted.add(n);
    }
    const uncharted = Object.values(metricNames).filter((metric) => !seriesOf(metric).some((s) => charted.has(s)));
    expect(uncharted).toEqual([]);
    expect(monitoring?.k).toMatchObject({ kind: "Component" });
  });

  it("the ServiceMonitor scrapes the path telemetry serves, on the port every mesh Service names", () => {
    const monitor = byKind(resources, "ServiceMonitor")[0] as unknown as {
      spec: { selector: { matchLabels: Record<string, string> }; endpoints: { port: string; path: string }[] };
    };
    expect(monitor.spec.endpoints).toEqual([expect.objectContaining({ port: "http", path: telemetryConfigFromEnv({}).metricsPath })]);
    const base = kustomizations.find(({ file }) => file.endsWith("base/kustomization.yaml"))?.k as { labels?: { pairs: Record<string, string> }[] };
    const commonLabels = Object.assign({}, ...(base.labels ?? []).map((l) => l.pairs)) as Record<string, string>;
    for (const part of meshParts) {
      const service = named(resources, "Service", `mentatlab-${part}`) as unknown as V1Service;
      const labels = { ...commonLabels, ...service.metadata?.labels };
      expect(labels).toMatchObject(monitor.spec.selector.matchLabels);
      expect(service.spec?.ports?.map((p) => p.name)).toContain("http");
    }
  });
});

const kubectl = ["/usr/bin/kubectl", "/usr/local/bin/kubectl"].find((path) => existsSync(path));

function render(overlay: string): KubeObject[] {
  if (!kubectl) throw new Error("kubectl is not installed");
  const text = execFileSync(kubectl, ["kustomize", join(kustomizeRoot, "overlays", overlay)], { encoding: "utf8", timeout: 60_000 });
  return documentsOf(text, `kubectl kustomize overlays/${overlay}`);
}

function decodedSecretValues(objects: readonly KubeObject[]): string[] {
  return byKind(objects, "Secret").flatMap((s) =>
    Object.values((s as unknown as { data?: Record<string, string> }).data ?? {}).map((v) => Buffer.from(v, "base64").toString("utf8")),
  );
}

/** Secrets and ConfigMaps the workloads refer to. */
function referencedConfig(objects: readonly KubeObject[]): { secrets: Set<string>; configMaps: Set<string> } {
  const secrets = new Set<string>();
  const configMaps = new Set<string>();
  for (const pod of objects.map(podSpecOf).filter((p): p is V1PodSpec => p !== undefined)) {
    for (const volume of pod.volumes ?? []) if (volume.secret?.secretName) secrets.add(volume.secret.secretName);
    for (const container of [...(pod.initContainers ?? []), ...pod.containers]) {
      for (const env of container.env ?? []) if (env.valueFrom?.secretKeyRef?.name) secrets.add(env.valueFrom.secretKeyRef.name);
      for (const from of container.envFrom ?? []) if (from.configMapRef?.name) configMaps.add(from.configMapRef.name);
    }
  }
  return { secrets, configMaps };
}

// kubectl is a documented tool dependency of these rendered checks only; the checks above always run.
describe(kubectl ? `deploy/kustomize rendered by ${kubectl} kustomize` : "deploy/kustomize rendered: kubectl not found, rendered checks not run", () => {
  it(kubectl ? "reports that the rendered path ran" : "reports that only the file checks ran", () => {
    console.info(
      kubectl
        ? `deploy.test: rendering overlays with ${kubectl}`
        : "deploy.test: kubectl not found; validated files only (install kubectl to also render overlays)",
    );
    expect(resources.length).toBeGreaterThan(0);
  });

  if (!kubectl) return;

  for (const overlay of ["dev", "prod"] as const) {
    it(`overlays/${overlay}: every rendered object validates and follows the pod rules`, async () => {
      const objects = render(overlay);
      const builtIn = objects.filter((o) => !customGroups.has(o.apiVersion));
      expect((await Promise.all(builtIn.map(validateKubeObject))).flat()).toEqual([]);
      expect(
        workloadProblems(
          objects,
          [...secretValues, ...decodedSecretValues(objects)].filter((v) => v.length >= 8),
        ),
      ).toEqual([]);
      expect(meshDeploymentProblems(objects)).toEqual([]);
      expect(networkPolicyProblems(objects)).toEqual([]);
      const namespaces = new Set(objects.filter((o) => !clusterScoped.has(o.kind)).map((o) => (o.metadata as { namespace?: string }).namespace));
      expect([...namespaces]).toEqual([overlay === "dev" ? "mentatlab-dev" : "mentatlab"]);
      const config = named(objects, "ConfigMap", "mentatlab-config") as unknown as { data: Record<string, string> };
      expect(config.data["MENTATLAB_K8S_NAMESPACE"]).toBe([...namespaces][0]);
      expect(config.data["ORCHESTRATOR_EXECUTOR"]).toBe("kubernetes");
      expect(sidecarInjectorProblems(objects, [...namespaces][0])).toEqual([]);
      const { secrets, configMaps } = referencedConfig(objects);
      for (const name of configMaps) expect(named(objects, "ConfigMap", name), name).toBeDefined();
      if (overlay === "dev") {
        // Dev generates every Secret it uses (hashed names, rewritten in the references).
        for (const name of [...secrets].filter((s) => !handMadeDevSecrets.includes(s))) expect(named(objects, "Secret", name), name).toBeDefined();
        expect(named(objects, "MutatingWebhookConfiguration", "mentatlab-sidecar-injector")?.webhooks).toMatchObject([{ failurePolicy: "Ignore" }]);
        expect(
          byKind(objects, "StatefulSet")
            .map((s) => s.metadata?.name)
            .sort(),
        ).toEqual(["mentatlab-minio", "mentatlab-redis"]);
      } else {
        // Prod takes them from the cluster: exactly the four documented in its kustomization.
        expect(byKind(objects, "Secret")).toEqual([]);
        // ...besides the webhook's TLS Secret, which cert-manager writes.
        const issued = certificateSecrets(objects);
        expect([...issued]).toEqual(["mentatlab-sidecar-injector-tls"]);
        expect([...secrets].filter((s) => !issued.has(s)).sort()).toEqual(["mentatlab-api-keys", "mentatlab-backends", "mentatlab-s3", "mentatlab-secrets"]);
        expect(named(objects, "MutatingWebhookConfiguration", "mentatlab-sidecar-injector")?.webhooks).toMatchObject([{ failurePolicy: "Fail" }]);
        for (const deployment of byKind(objects, "Deployment"))
          expect(podSpecOf(deployment)?.topologySpreadConstraints?.length, deployment.metadata?.name).toBe(2);
        expect(byKind(objects, "ConfigMap").filter((c) => c.metadata?.labels?.["grafana_dashboard"] === "1")).toHaveLength(2);
        expect(byKind(objects, "PrometheusRule")).toHaveLength(1);
      }
    });
  }
});
