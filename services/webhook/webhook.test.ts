import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import type { TLSSocket } from "node:tls";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadSidecarConfig } from "../../agent-sidecar/config.js";
import { validateKubeObject } from "../../deploy/validate/kube-object.js";
import { nativeSidecarProblems } from "../../deploy/validate/pod-rules.js";
import { applyJsonPatch } from "../../test/harness/json-patch.js";
import { buildJob, buildRunSecret } from "../orchestrator/kubernetes/job-spec.js";
import { testConfig, testRunToken, testTask } from "../orchestrator/kubernetes/testing.js";
import type { AdmissionReviewResponse } from "./admission-review.js";
import { webhookConfigFromEnv } from "./config.js";
import { attemptSecretAnnotation, injectedAnnotation, injectLabel } from "./injection.js";
import { type RunningWebhook, startWebhook } from "./server.js";
import { makeLoopbackCertificate } from "./testing.js";

let dir: string;
let webhook: RunningWebhook;
let ca: Buffer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "webhook-tls-"));
  ca = makeLoopbackCertificate(dir);
  const config = webhookConfigFromEnv({
    MENTATLAB_WEBHOOK_PORT: "0",
    MENTATLAB_WEBHOOK_TLS_CERT_FILE: join(dir, "tls.crt"),
    MENTATLAB_WEBHOOK_TLS_KEY_FILE: join(dir, "tls.key"),
    MENTATLAB_SIDECAR_IMAGE: "mentatlab/agent-sidecar:test",
    MENTATLAB_WEBHOOK_TLS_RELOAD_MS: "50",
  });
  webhook = await startWebhook(config);
});

afterAll(async () => {
  await webhook?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Reply {
  readonly status: number;
  readonly body: string;
  readonly peerFingerprint: string;
}

function post(body: string, options: { method?: string; path?: string; contentType?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${webhook.url}${options.path ?? "/mutate"}`,
      { method: options.method ?? "POST", ca, headers: { "content-type": options.contentType ?? "application/json" } },
      (res) => {
        const peerFingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8"), peerFingerprint }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** A pod as the Job controller submits it, already defaulted (what a mutating webhook sees). */
function jobPod(overrides: { labels?: Record<string, string>; annotations?: Record<string, string> | undefined } = {}): V1Pod {
  const annotations = "annotations" in overrides ? overrides.annotations : { [attemptSecretAnnotation]: "ml-run-0123abcd-thumbnail-1" };
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      generateName: "ml-run-0123abcd-thumbnail-1-",
      namespace: "agents",
      labels: {
        "batch.kubernetes.io/job-name": "ml-run-0123abcd-thumbnail-1",
        "batch.kubernetes.io/controller-uid": "6f2bd8b6-4f0c-4b8a-8d1e-3c0e1a6c5b7e",
        [injectLabel]: "true",
        ...overrides.labels,
      },
      ...(annotations ? { annotations } : {}),
      ownerReferences: [
        {
          apiVersion: "batch/v1",
          kind: "Job",
          name: "ml-run-0123abcd-thumbnail-1",
          uid: "6f2bd8b6-4f0c-4b8a-8d1e-3c0e1a6c5b7e",
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      restartPolicy: "Never",
      automountServiceAccountToken: false,
      securityContext: { runAsNonRoot: true, runAsUser: 65532, fsGroup: 65532 },
      containers: [
        {
          name: "agent",
          image: "registry.example/thumbnail:1.0.0",
          env: [{ name: "LOG_LEVEL", value: "info" }],
          resources: { limits: { cpu: "2", memory: "4Gi" }, requests: { cpu: "2", memory: "4Gi" } },
          terminationMessagePath: "/dev/termination-log",
          terminationMessagePolicy: "File",
          imagePullPolicy: "IfNotPresent",
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
        },
      ],
      dnsPolicy: "ClusterFirst",
      schedulerName: "default-scheduler",
      terminationGracePeriodSeconds: 30,
    },
  };
}

/** An AdmissionReview v1 as the API server posts it (shape from the Kubernetes API reference). */
function review(object: unknown, options: { uid?: string; dryRun?: boolean; operation?: string } = {}): string {
  const resource = { group: "", version: "v1", resource: "pods" };
  const kind = { group: "", version: "v1", kind: "Pod" };
  return JSON.stringify({
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: options.uid ?? "705ab4f5-6393-11e8-b7cc-42010a800002",
      kind,
      resource,
      requestKind: kind,
      requestResource: resource,
      namespace: "agents",
      operation: options.operation ?? "CREATE",
      userInfo: {
        username: "system:serviceaccount:kube-system:job-controller",
        uid: "b9b7e1e4-0000-4000-8000-000000000001",
        groups: ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"],
      },
      object,
      oldObject: null,
      dryRun: options.dryRun ?? false,
      options: { apiVersion: "meta.k8s.io/v1", kind: "CreateOptions" },
    },
  });
}

async function admit(object: unknown, options: Parameters<typeof review>[1] = {}): Promise<AdmissionReviewResponse["response"]> {
  const reply = await post(review(object, options));
  expect(reply.status, reply.body).toBe(200);
  const answer = JSON.parse(reply.body) as AdmissionReviewResponse;
  expect(answer).toMatchObject({
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    response: { uid: options.uid ?? "705ab4f5-6393-11e8-b7cc-42010a800002" },
  });
  return answer.response;
}

function patched(pod: V1Pod, response: AdmissionReviewResponse["response"]): V1Pod {
  expect(response.patchType).toBe("JSONPatch");
  return applyJsonPatch(pod, JSON.parse(Buffer.from(response.patch ?? "", "base64").toString("utf8")) as unknown[]);
}

/**
 * The environment the kubelet would give `container` from a Secret named `secretName` holding
 * `data` (and, for the inputs file, its path only): literal values and secretKeyRefs.
 */
function resolveEnv(container: V1Container, secretName: string, data: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const variable of container.env ?? []) {
    const ref = variable.valueFrom?.secretKeyRef;
    if (variable.value !== undefined) env[variable.name] = variable.value;
    else if (ref?.name === secretName && data[ref.key] !== undefined) env[variable.name] = data[ref.key]!;
    else if (!ref?.optional) throw new Error(`${container.name}: ${variable.name} refers to a missing key ${ref?.name}/${ref?.key}`);
  }
  return env;
}

describe("sidecar injection webhook, over TLS", () => {
  it("serves the certificate from its files", async () => {
    const reply = await post("{}");
    expect(reply.peerFingerprint).toBe(new X509Certificate(ca).fingerprint256);
  });

  it("serves a renewed certificate once its files change, without a restart", async () => {
    const renewed = mkdtempSync(join(tmpdir(), "webhook-renewed-"));
    const next = makeLoopbackCertificate(renewed);
    // Swapped in as the kubelet does: whole files, the certificate and key renamed into place.
    renameSync(join(renewed, "tls.key"), join(dir, "tls.key"));
    renameSync(join(renewed, "tls.crt"), join(dir, "tls.crt"));
    rmSync(renewed, { recursive: true, force: true });
    const previous = ca;
    ca = next;
    try {
      const fingerprint = new X509Certificate(next).fingerprint256;
      const deadline = Date.now() + 5000;
      let seen = "";
      while (Date.now() < deadline && seen !== fingerprint) {
        seen = await post("{}").then(
          (r) => r.peerFingerprint,
          () => "",
        );
        if (seen !== fingerprint) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(seen).toBe(fingerprint);
      expect(fingerprint).not.toBe(new X509Certificate(previous).fingerprint256);
    } catch (err) {
      ca = previous;
      throw err;
    }
  });

  it("injects a labelled pod: native sidecar, shared volume, agent env; the result is a valid Pod", async () => {
    const pod = jobPod();
    const response = await admit(pod);
    expect(response.allowed).toBe(true);
    const result = patched(pod, response);
    expect(
      await validateKubeObject({ ...result, metadata: { ...result.metadata, name: "ml-run-0123abcd-thumbnail-1-x7k2p" } } as Parameters<
        typeof validateKubeObject
      >[0]),
    ).toEqual([]);
    expect(nativeSidecarProblems(result.spec!, "sidecar")).toEqual([]);
    // The same sidecar the executor puts in its Jobs, reading the attempt's Secret.
    const job = buildJob(testTask(), testConfig());
    const jobSidecar = job.spec!.template.spec!.initContainers![0]!;
    // The Job's sidecar names its Secret after the Job; everything else is the same.
    expect(JSON.stringify(result.spec?.initContainers)).toBe(JSON.stringify([jobSidecar]).replaceAll(job.metadata!.name!, "ml-run-0123abcd-thumbnail-1"));
    expect(result.spec?.volumes).toEqual([
      { name: "shared", emptyDir: {} },
      {
        name: "mentatlab-attempt",
        secret: { secretName: "ml-run-0123abcd-thumbnail-1", items: [{ key: "inputs.json", path: "inputs.json" }], defaultMode: 0o444 },
      },
    ]);
    const agent = result.spec!.containers[0]!;
    const env = Object.fromEntries((agent.env ?? []).map((e) => [e.name, e]));
    expect(env["LOG_LEVEL"]?.value).toBe("info");
    expect(env["MENTATLAB_SIDECAR_ADDRESS"]?.value).toBe("/mentatlab/shared/sidecar.sock");
    expect(env["MENTATLAB_SIDECAR_TOKEN"]?.valueFrom?.secretKeyRef).toEqual({ name: "ml-run-0123abcd-thumbnail-1", key: "MENTATLAB_SIDECAR_TOKEN" });
    expect(env["MENTATLAB_RUN_TOKEN"]).toBeUndefined();
    expect(agent.volumeMounts).toEqual([{ name: "shared", mountPath: "/mentatlab/shared" }]);
    expect(result.metadata?.annotations?.[injectedAnnotation]).toBe("true");
    expect(result.metadata?.annotations?.[attemptSecretAnnotation]).toBe("ml-run-0123abcd-thumbnail-1");
  });

  it("configures the injected sidecar entirely from a Secret shaped like the executor's", async () => {
    const pod = jobPod();
    const sidecar = patched(pod, await admit(pod)).spec!.initContainers![0]!;
    const task = testTask();
    const secret = buildRunSecret(task, { name: "ml-run-0123abcd-thumbnail-1", uid: "u" }, "pod-token");
    const env = resolveEnv(sidecar, pod.metadata!.annotations![attemptSecretAnnotation]!, secret.stringData ?? {});
    expect(env["MENTATLAB_INPUTS_FILE"]).toBe("/mentatlab/attempt/inputs.json");
    // The kubelet mounts the Secret's inputs.json there; here it is a file in the test's directory.
    writeFileSync(join(dir, "inputs.json"), secret.stringData?.["inputs.json"] ?? "");
    const config = loadSidecarConfig({ ...env, MENTATLAB_INPUTS_FILE: join(dir, "inputs.json") });
    expect(config).toMatchObject({
      runId: task.runId,
      nodeId: task.nodeId,
      runToken: testRunToken,
      sidecarToken: "pod-token",
      sharedDir: "/mentatlab/shared",
      params: { shout: true },
    });
    expect(config.inputs.get("text")?.value).toEqual({ case: "text", value: "hello" });
  });

  it("adds to arrays and annotations that already exist, keeping what is there", async () => {
    const pod = jobPod({ annotations: { [attemptSecretAnnotation]: "s1", "example.com/keep": "yes" } });
    pod.spec!.initContainers = [
      { name: "fetch-model", image: "busybox:1.36", command: ["true"], securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } } },
    ];
    pod.spec!.volumes = [{ name: "model", emptyDir: {} }];
    pod.spec!.containers[0]!.volumeMounts = [{ name: "model", mountPath: "/model" }];
    const result = patched(pod, await admit(pod));
    expect(result.spec?.initContainers?.map((c) => c.name)).toEqual(["fetch-model", "sidecar"]);
    expect(result.spec?.volumes?.map((v) => v.name)).toEqual(["model", "shared", "mentatlab-attempt"]);
    expect(result.spec?.containers[0]?.volumeMounts?.map((m) => m.name)).toEqual(["model", "shared"]);
    expect(result.metadata?.annotations).toMatchObject({ "example.com/keep": "yes", [injectedAnnotation]: "true" });
    expect(await validateKubeObject({ ...result, metadata: { ...result.metadata, name: "p" } } as Parameters<typeof validateKubeObject>[0])).toEqual([]);
  });

  it("is idempotent: an injected pod reviewed again is allowed with no patch", async () => {
    const once = patched(jobPod(), await admit(jobPod()));
    const again = await admit(once);
    expect(again).toEqual({ uid: "705ab4f5-6393-11e8-b7cc-42010a800002", allowed: true });
    // A pod of the executor's own Jobs already has its sidecar, label or not.
    const template = buildJob(testTask(), testConfig()).spec!.template;
    const executorPod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { ...template.metadata, labels: { ...template.metadata?.labels, [injectLabel]: "true" } },
      spec: template.spec,
    };
    expect(await admit(executorPod)).toEqual({ uid: "705ab4f5-6393-11e8-b7cc-42010a800002", allowed: true });
  });

  it('leaves an unlabelled pod (or one labelled anything but "true") untouched', async () => {
    for (const labels of [{ [injectLabel]: "false" }, { [injectLabel]: "" }]) {
      expect(await admit(jobPod({ labels }))).toEqual({ uid: "705ab4f5-6393-11e8-b7cc-42010a800002", allowed: true });
    }
    const unlabelled = jobPod();
    delete unlabelled.metadata!.labels![injectLabel];
    expect(await admit(unlabelled)).toEqual({ uid: "705ab4f5-6393-11e8-b7cc-42010a800002", allowed: true });
  });

  it("answers a dry run exactly as the real request, with its own uid", async () => {
    const real = await admit(jobPod(), { uid: "real-1" });
    const dry = await admit(jobPod(), { uid: "dry-1", dryRun: true });
    expect({ ...dry, uid: "real-1" }).toEqual(real);
  });

  it("refuses a labelled pod that names no attempt Secret, or whose volume name clashes, saying what to fix", async () => {
    const noSecret = await admit(jobPod({ annotations: undefined }));
    expect(noSecret.allowed).toBe(false);
    expect(noSecret.patch).toBeUndefined();
    expect(noSecret.status?.message).toContain(attemptSecretAnnotation);
    const clash = jobPod();
    clash.spec!.volumes = [{ name: "shared", emptyDir: {} }];
    expect((await admit(clash)).status?.message).toMatch(/already has a volume shared/);
  });

  it("allows what it was not meant to see (an UPDATE, another kind) with a warning and no patch", async () => {
    const update = await admit(jobPod(), { operation: "UPDATE" });
    expect(update.allowed).toBe(true);
    expect(update.patch).toBeUndefined();
    expect(update.warnings?.[0]).toContain("only CREATE");
  });

  it("answers malformed requests with HTTP 400 and a message, never an AdmissionReview", async () => {
    const cases: [string, RegExp][] = [
      ["not json", /not JSON/],
      ["[]", /JSON object/],
      [JSON.stringify({ apiVersion: "admission.k8s.io/v1beta1", kind: "AdmissionReview", request: { uid: "x" } }), /admission\.k8s\.io\/v1/],
      [JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" }), /no request/],
      [review(jobPod(), { uid: "" }), /request\.uid/],
      [
        JSON.stringify({
          apiVersion: "admission.k8s.io/v1",
          kind: "AdmissionReview",
          request: { uid: "u", kind: { group: "", version: "v1", kind: "Pod" }, operation: "CREATE", object: "pod" },
        }),
        /request\.object/,
      ],
    ];
    for (const [body, message] of cases) {
      const reply = await post(body);
      expect(reply.status, body).toBe(400);
      expect((JSON.parse(reply.body) as { message: string }).message).toMatch(message);
    }
    expect((await post(review(jobPod()), { contentType: "text/plain" })).status).toBe(415);
    expect((await post("", { method: "GET" })).status).toBe(405);
    expect((await post(review(jobPod()), { path: "/validate" })).status).toBe(404);
    expect((await post("", { method: "GET", path: "/healthz" })).status).toBe(200);
  });
});
