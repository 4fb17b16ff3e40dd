/**
 * A small Kubernetes API server for tests, since no real one can run here: Jobs (validated like the
 * API server would: schemas from kubernetes-models plus unknown fields, names and the pod rules a Job
 * must follow), Secrets and pods, resource versions, list + watch (with history, so a watch resumes
 * from a resourceVersion, and answers 410 Gone when that version was compacted away), deletion with
 * propagationPolicy and owner-reference garbage collection, pod logs. It plays the Job controller
 * too: each Job gets one pod, which ends the way the test scripted (succeed, fail with an exit code,
 * OOMKilled, deadline exceeded) or stays running until the test finishes it.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import * as k8s from "@kubernetes/client-node";
import { KubeConfig, type V1Job, type V1Pod, type V1Secret } from "@kubernetes/client-node";
import { Job } from "kubernetes-models/batch/v1";
import { Secret } from "kubernetes-models/v1";
import { dns1123Label, dns1123Subdomain, labelProblems, unknownFields } from "../../deploy/validate/kube-rules.js";
import { LOOPBACK } from "./ports.js";

/** How the simulated Job controller ends a Job's pod. */
export type JobOutcome =
  | { readonly result: "succeed" }
  | { readonly result: "fail"; readonly exitCode: number; readonly reason?: "Error" | "OOMKilled" }
  | { readonly result: "deadline" }
  /** Stays running until `finishJob` or deletion. */
  | { readonly result: "hold" };

export interface JobScript {
  readonly outcome: JobOutcome;
  /** The agent container's log, one line per entry. */
  readonly logs?: readonly string[];
  /** How long the pod runs before the outcome, default 30 ms. */
  readonly runMs?: number;
  /** The pod never gets going: unschedulable (with the scheduler's message), or a container stuck waiting. */
  readonly stuck?: { readonly unschedulable: string } | { readonly container: string; readonly waiting: string; readonly message: string };
}

/** One request the server answered, for assertions (e.g. which propagationPolicy a delete used). */
export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly body: unknown;
}

export interface FakeKubeApiServer {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** A KubeConfig pointing at this server, with `namespace` as the context's namespace. */
  kubeConfig(namespace?: string): KubeConfig;
  /** What happens to the Job named `name` once created; unscripted Jobs follow the default script. */
  script(name: string, script: JobScript): void;
  /** What happens to unscripted Jobs; at first they succeed. */
  scriptDefault(script: JobScript): void;
  /** Ends a held (or still running) Job now. */
  finishJob(namespace: string, name: string, outcome: Exclude<JobOutcome, { result: "hold" }>): void;
  job(namespace: string, name: string): V1Job | undefined;
  secret(namespace: string, name: string): V1Secret | undefined;
  pods(namespace: string): V1Pod[];
  /** Stores a Job as if created earlier (e.g. by an orchestrator that since restarted). */
  seedJob(namespace: string, job: V1Job, script?: JobScript): V1Job;
  readonly requests: readonly RecordedRequest[];
  /** Closes every open watch, as an API server does when a watch times out or the server restarts. */
  endWatches(): void;
  /**
   * The next `count` watches of `kind` (default jobs) answer 410 Gone: as an ERROR event in a 200
   * stream (`event`, the default, as real servers do) or as HTTP 410 (`status`).
   */
  goneOnNextWatches(count: number, options?: { readonly as?: "event" | "status"; readonly kind?: Kind }): void;
  /** The next `count` watches are accepted but never answered, not even with headers (an overloaded API server). */
  stallNextWatches(count: number): void;
  /** Forgets event history: a watch from any version before now answers 410 Gone. */
  compact(): void;
  /** Watch connections open now, of one kind or of all. */
  openWatches(kind?: Kind): number;
  stop(): Promise<void>;
}

export type Kind = "jobs" | "pods" | "secrets";
interface Stored {
  kind: Kind;
  namespace: string;
  object: k8s.KubernetesObject & { metadata: k8s.V1ObjectMeta };
}
interface HistoryEntry {
  readonly rv: number;
  readonly kind: Kind;
  readonly namespace: string;
  readonly type: "ADDED" | "MODIFIED" | "DELETED";
  readonly object: unknown;
}
interface OpenWatch {
  readonly kind: Kind;
  readonly namespace: string;
  readonly matches: (object: Stored["object"]) => boolean;
  readonly response: ServerResponse;
}

/** Everything the API server would reject in this Job, as `path: problem` lines; empty when valid. */
export function validateJob(job: unknown): string[] {
  const problems = [...schemaProblems(() => new Job(job as ConstructorParameters<typeof Job>[0]).validate())];
  problems.push(...unknownFields(job, "V1Job", "job"));
  const j = job as V1Job;
  const name = j.metadata?.name ?? "";
  // The Job's name becomes a label value of its pods, hence the label rules.
  if (!dns1123Label.test(name) || name.length > 63) problems.push(`metadata.name: "${name}" must be a DNS-1123 label of at most 63 characters`);
  problems.push(...labelProblems(j.metadata, "metadata"), ...labelProblems(j.spec?.template?.metadata, "spec.template.metadata"));
  const pod = j.spec?.template?.spec;
  if (!pod) return problems;
  if (pod.restartPolicy !== "Never" && pod.restartPolicy !== "OnFailure")
    problems.push(`spec.template.spec.restartPolicy: a Job's pods must use Never or OnFailure, not ${pod.restartPolicy}`);
  const volumes = new Set((pod.volumes ?? []).map((v) => v.name));
  const names = new Set<string>();
  const containers = [
    ...(pod.initContainers ?? []).map((c) => ({ c, path: "initContainers", init: true })),
    ...pod.containers.map((c) => ({ c, path: "containers", init: false })),
  ];
  for (const { c, path, init } of containers) {
    const at = `spec.template.spec.${path}[${c.name}]`;
    if (!dns1123Label.test(c.name)) problems.push(`${at}.name: must be a DNS-1123 label`);
    if (names.has(c.name)) problems.push(`${at}.name: duplicate container name`);
    names.add(c.name);
    if (!c.image) problems.push(`${at}.image: required`);
    if (c.restartPolicy !== undefined && (!init || c.restartPolicy !== "Always"))
      problems.push(`${at}.restartPolicy: only init containers may set it, and only to Always`);
    if (init && c.restartPolicy !== "Always" && (c.startupProbe || c.readinessProbe || c.livenessProbe)) {
      problems.push(`${at}: probes are only allowed on sidecar (restartPolicy: Always) init containers`);
    }
    for (const mount of c.volumeMounts ?? []) if (!volumes.has(mount.name)) problems.push(`${at}.volumeMounts[${mount.name}]: no such volume`);
    for (const env of c.env ?? [])
      if (env.value !== undefined && env.valueFrom !== undefined) problems.push(`${at}.env[${env.name}]: value and valueFrom are exclusive`);
    for (const [resource, limit] of Object.entries(c.resources?.limits ?? {})) {
      const request = c.resources?.requests?.[resource];
      if (resource.includes("/") && request !== undefined && request !== limit)
        problems.push(`${at}.resources: extended resource ${resource} needs requests equal to limits`);
    }
  }
  return problems;
}

/** What the API server would reject in this Secret. */
export function validateSecret(secret: unknown): string[] {
  const problems = [...schemaProblems(() => new Secret(secret as ConstructorParameters<typeof Secret>[0]).validate())];
  problems.push(...unknownFields(secret, "V1Secret", "secret"));
  const s = secret as V1Secret;
  const name = s.metadata?.name ?? "";
  if (!dns1123Subdomain.test(name) || name.length > 253) problems.push(`metadata.name: "${name}" must be a DNS-1123 subdomain`);
  problems.push(...labelProblems(s.metadata, "metadata"));
  // The API server's limit on a Secret's values (stringData is merged into data first).
  const size =
    Object.values(s.data ?? {}).reduce((sum, value) => sum + Buffer.from(value, "base64").length, 0) +
    Object.values(s.stringData ?? {}).reduce((sum, value) => sum + Buffer.byteLength(value), 0);
  if (size > 1024 * 1024) problems.push(`data: Too long: must have at most 1048576 bytes (has ${size})`);
  return problems;
}

function schemaProblems(validate: () => void): string[] {
  try {
    validate();
    return [];
  } catch (err) {
    return [err instanceof Error ? err.message : String(err)];
  }
}

/** Starts the fake API server on a loopback port. */
export async function startFakeKubeApiServer(): Promise<FakeKubeApiServer> {
  const store = new Map<string, Stored>();
  const history: HistoryEntry[] = [];
  const watches = new Set<OpenWatch>();
  const scripts = new Map<string, JobScript>();
  let defaultScript: JobScript = { outcome: { result: "succeed" } };
  const timers = new Set<NodeJS.Timeout>();
  const requests: RecordedRequest[] = [];
  const logs = new Map<string, readonly string[]>();
  let resourceVersion = 100;
  let compactedBelow = 0;
  let stalls = 0;
  let gone: { count: number; as: "event" | "status"; kind: Kind } = { count: 0, as: "event", kind: "jobs" };

  const key = (kind: Kind, namespace: string, name: string) => `${kind}/${namespace}/${name}`;
  const get = (kind: Kind, namespace: string, name: string) => store.get(key(kind, namespace, name));
  const snapshot = <T>(object: T): T => structuredClone(object);
  const later = (ms: number, action: () => void) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      action();
    }, ms);
    timers.add(timer);
  };

  function record(type: HistoryEntry["type"], entry: Stored): void {
    resourceVersion += 1;
    entry.object.metadata.resourceVersion = String(resourceVersion);
    const object = snapshot(entry.object);
    history.push({ rv: resourceVersion, kind: entry.kind, namespace: entry.namespace, type, object });
    for (const watch of watches) {
      if (watch.kind === entry.kind && watch.namespace === entry.namespace && watch.matches(entry.object))
        watch.response.write(`${JSON.stringify({ type, object })}\n`);
    }
  }

  function put(entry: Stored, type: "ADDED" | "MODIFIED"): void {
    store.set(key(entry.kind, entry.namespace, entry.object.metadata.name ?? ""), entry);
    record(type, entry);
  }

  function remove(entry: Stored): void {
    store.delete(key(entry.kind, entry.namespace, entry.object.metadata.name ?? ""));
    record("DELETED", entry);
  }

  /** The garbage collector: dependents of a deleted owner go too. */
  function collectDependents(uid: string): void {
    for (const entry of [...store.values()]) {
      if (entry.object.metadata.ownerReferences?.some((ref) => ref.uid === uid)) {
        remove(entry);
        collectDependents(entry.object.metadata.uid ?? "");
      }
    }
  }

  /** A copy of a posted object as the API server stores it: with uid, namespace and creation time. */
  function stored(kind: Kind, namespace: string, object: Stored["object"]): Stored {
    return { kind, namespace, object: { ...snapshot(object), metadata: newMetadata(object.metadata, namespace) } };
  }

  function newMetadata(meta: k8s.V1ObjectMeta | undefined, namespace: string): k8s.V1ObjectMeta {
    return { ...meta, namespace, uid: randomUUID(), creationTimestamp: new Date().toISOString() as unknown as Date, generation: 1 };
  }

  function startJob(namespace: string, jobEntry: Stored, script: JobScript): void {
    const job = jobEntry.object as V1Job;
    const jobName = job.metadata?.name ?? "";
    const template = job.spec?.template;
    later(5, () => {
      // Deleted, or already finished by the test: the controller has nothing left to start.
      if (get("jobs", namespace, jobName) !== jobEntry || job.status?.conditions?.length) return;
      const podName = `${jobName}-${randomUUID().slice(0, 5)}`;
      const pod: V1Pod = {
        apiVersion: "v1",
        kind: "Pod",
        metadata: {
          ...newMetadata(
            {
              name: podName,
              labels: {
                ...template?.metadata?.labels,
                "batch.kubernetes.io/job-name": jobName,
                "job-name": jobName,
                "batch.kubernetes.io/controller-uid": job.metadata?.uid ?? "",
              },
            },
            namespace,
          ),
          ownerReferences: [{ apiVersion: "batch/v1", kind: "Job", name: jobName, uid: job.metadata?.uid ?? "", controller: true, blockOwnerDeletion: true }],
        },
        spec: snapshot(template?.spec) as k8s.V1PodSpec,
        status: podStatus(template?.spec, script.stuck),
      };
      logs.set(`${namespace}/${podName}`, script.logs ?? []);
      put({ kind: "pods", namespace, object: pod as Stored["object"] }, "ADDED");
      job.status = { active: 1, startTime: new Date().toISOString() as unknown as Date };
      put(jobEntry, "MODIFIED");
      if (script.outcome.result !== "hold" && !script.stuck) {
        const outcome = script.outcome;
        later(script.runMs ?? 30, () => finish(namespace, jobName, outcome));
      }
    });
  }

  function finish(namespace: string, jobName: string, outcome: Exclude<JobOutcome, { result: "hold" }>): void {
    const jobEntry = get("jobs", namespace, jobName);
    if (!jobEntry) return;
    const job = jobEntry.object as V1Job;
    const now = new Date().toISOString() as unknown as Date;
    for (const podEntry of store.values()) {
      const pod = podEntry.object as V1Pod;
      if (podEntry.kind !== "pods" || pod.metadata?.labels?.["batch.kubernetes.io/job-name"] !== jobName) continue;
      if (outcome.result === "deadline") {
        pod.status = { ...pod.status, phase: "Failed", reason: "DeadlineExceeded", message: "Pod was active on the node longer than the specified deadline" };
      } else {
        const exitCode = outcome.result === "succeed" ? 0 : outcome.exitCode;
        const reason = outcome.result === "succeed" ? "Completed" : (outcome.reason ?? "Error");
        pod.status = {
          ...pod.status,
          phase: exitCode === 0 ? "Succeeded" : "Failed",
          containerStatuses: (pod.spec?.containers ?? []).map((c) => containerStatus(c, { terminated: { exitCode, reason, finishedAt: now } })),
        };
      }
      put(podEntry, "MODIFIED");
    }
    const condition = (type: string, reason: string, message: string): k8s.V1JobCondition => ({
      type,
      status: "True",
      reason,
      message,
      lastTransitionTime: now,
      lastProbeTime: now,
    });
    if (outcome.result === "succeed") {
      job.status = {
        succeeded: 1,
        active: 0,
        startTime: job.status?.startTime,
        completionTime: now,
        conditions: [
          condition("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods"),
          condition("Complete", "CompletionsReached", "Reached expected number of succeeded pods"),
        ],
      };
    } else {
      const [reason, message] =
        outcome.result === "deadline"
          ? ["DeadlineExceeded", "Job was active longer than specified deadline"]
          : ["BackoffLimitExceeded", "Job has reached the specified backoff limit"];
      job.status = {
        failed: 1,
        active: 0,
        startTime: job.status?.startTime,
        conditions: [condition("FailureTarget", reason, message), condition("Failed", reason, message)],
      };
    }
    put(jobEntry, "MODIFIED");
  }

  function podStatus(spec: k8s.V1PodSpec | undefined, stuck: JobScript["stuck"]): k8s.V1PodStatus {
    const now = new Date().toISOString() as unknown as Date;
    if (stuck && "unschedulable" in stuck) {
      return {
        phase: "Pending",
        conditions: [{ type: "PodScheduled", status: "False", reason: "Unschedulable", message: stuck.unschedulable, lastTransitionTime: now }],
      };
    }
    const running: k8s.V1ContainerState = { running: { startedAt: now } };
    const stateOf = (name: string): k8s.V1ContainerState =>
      stuck && stuck.container === name ? { waiting: { reason: stuck.waiting, message: stuck.message } } : running;
    const statusOf = (c: k8s.V1Container) => containerStatus(c, stateOf(c.name));
    return {
      phase: stuck ? "Pending" : "Running",
      startTime: now,
      initContainerStatuses: (spec?.initContainers ?? []).map(statusOf),
      containerStatuses: (spec?.containers ?? []).map(statusOf),
    };
  }

  function containerStatus(c: k8s.V1Container, state: k8s.V1ContainerState): k8s.V1ContainerStatus {
    return { name: c.name, image: c.image ?? "", imageID: "", ready: "running" in state, restartCount: 0, state };
  }

  function status(res: ServerResponse, code: number, reason: string, message: string, details?: unknown): void {
    res.writeHead(code, { "content-type": "application/json" });
    res.end(JSON.stringify({ kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code, ...(details ? { details } : {}) }));
  }

  function json(res: ServerResponse, code: number, body: unknown): void {
    res.writeHead(code, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  }

  function selectorMatches(query: URLSearchParams): (object: Stored["object"]) => boolean {
    const fields = (query.get("fieldSelector") ?? "")
      .split(",")
      .filter(Boolean)
      .map((s) => s.split("=") as [string, string]);
    const labels = (query.get("labelSelector") ?? "")
      .split(",")
      .filter(Boolean)
      .map((s) => s.split("=") as [string, string]);
    return (object) =>
      fields.every(([field, value]) => field === "metadata.name" && object.metadata.name === value) &&
      labels.every(([label, value]) => object.metadata.labels?.[label] === value);
  }

  function list(res: ServerResponse, kind: Kind, namespace: string, query: URLSearchParams): void {
    const matches = selectorMatches(query);
    const items = [...store.values()].filter((e) => e.kind === kind && e.namespace === namespace && matches(e.object)).map((e) => e.object);
    json(res, 200, { kind: "List", apiVersion: "v1", metadata: { resourceVersion: String(resourceVersion) }, items });
  }

  function watch(req: IncomingMessage, res: ServerResponse, kind: Kind, namespace: string, query: URLSearchParams): void {
    const from = Number(query.get("resourceVersion") ?? "0");
    if (stalls > 0) {
      stalls -= 1;
      return;
    }
    if (gone.count > 0 && gone.kind === kind) {
      gone.count -= 1;
      if (gone.as === "status") {
        status(res, 410, "Expired", "too old resource version");
        return;
      }
    } else if (from >= compactedBelow || from === 0) {
      const matches = selectorMatches(query);
      res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
      // Like the API server: the client learns the watch is established before any event arrives.
      res.flushHeaders();
      for (const entry of history) {
        if (entry.rv > from && from !== 0 && entry.kind === kind && entry.namespace === namespace && matches(entry.object as Stored["object"])) {
          res.write(`${JSON.stringify({ type: entry.type, object: entry.object })}\n`);
        }
      }
      const open: OpenWatch = { kind, namespace, matches, response: res };
      watches.add(open);
      req.on("close", () => watches.delete(open));
      return;
    }
    // Real API servers answer an expired version inside a 200 stream, with an ERROR event carrying a 410 Status.
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      `${JSON.stringify({ type: "ERROR", object: { kind: "Status", apiVersion: "v1", status: "Failure", message: `too old resource version: ${from} (${compactedBelow})`, reason: "Expired", code: 410 } })}\n`,
    );
  }

  async function readBody(req: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    return text ? (JSON.parse(text) as unknown) : undefined;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://fake");
    const body = req.method === "POST" || req.method === "DELETE" || req.method === "PUT" ? await readBody(req) : undefined;
    requests.push({ method: req.method ?? "", path: url.pathname, query: Object.fromEntries(url.searchParams), body });
    const route = /^\/(?:apis\/batch\/v1|api\/v1)\/namespaces\/([^/]+)\/(jobs|pods|secrets)(?:\/([^/]+))?(\/log)?$/.exec(url.pathname);
    if (!route) {
      status(res, 404, "NotFound", `the server could not find the requested resource ${url.pathname}`);
      return;
    }
    const [, namespace = "", kind = "jobs", name, log] = route as unknown as [string, string, Kind, string | undefined, string | undefined];
    const batchPath = url.pathname.startsWith("/apis/batch/v1/");
    if ((kind === "jobs") !== batchPath) {
      status(res, 404, "NotFound", `the server could not find the requested resource ${url.pathname}`);
      return;
    }
    if (req.method === "GET" && !name) {
      if (url.searchParams.get("watch") === "true") watch(req, res, kind, namespace, url.searchParams);
      else list(res, kind, namespace, url.searchParams);
      return;
    }
    if (req.method === "POST" && !name) {
      create(res, kind, namespace, body);
      return;
    }
    const entry = name ? get(kind, namespace, name) : undefined;
    if (!entry) {
      status(res, 404, "NotFound", `${kind} "${name}" not found`);
      return;
    }
    if (req.method === "GET" && log) {
      const tail = Number(url.searchParams.get("tailLines") ?? "0");
      const lines = logs.get(`${namespace}/${name}`) ?? [];
      res.writeHead(200, { "content-type": "text/plain" });
      res.end(
        lines
          .slice(tail > 0 ? -tail : 0)
          .map((l) => `${l}\n`)
          .join(""),
      );
      return;
    }
    if (req.method === "GET") {
      json(res, 200, entry.object);
      return;
    }
    if (req.method === "DELETE") {
      const policy = url.searchParams.get("propagationPolicy") ?? (body as { propagationPolicy?: string } | undefined)?.propagationPolicy ?? "Background";
      if (policy === "Foreground") {
        entry.object.metadata.deletionTimestamp = new Date().toISOString() as unknown as Date;
        entry.object.metadata.finalizers = ["foregroundDeletion"];
        put(entry, "MODIFIED");
        collectDependents(entry.object.metadata.uid ?? "");
        remove(entry);
      } else {
        remove(entry);
        if (policy !== "Orphan") later(5, () => collectDependents(entry.object.metadata.uid ?? ""));
      }
      json(res, 200, { kind: "Status", apiVersion: "v1", status: "Success", details: { name, kind, uid: entry.object.metadata.uid } });
      return;
    }
    status(res, 405, "MethodNotAllowed", `${req.method} is not supported on ${kind} here`);
  }

  function create(res: ServerResponse, kind: Kind, namespace: string, body: unknown): void {
    const object = body as Stored["object"] | undefined;
    const name = object?.metadata?.name ?? "";
    const problems = kind === "jobs" ? validateJob(body) : kind === "secrets" ? validateSecret(body) : [];
    if (problems.length > 0) {
      status(res, 422, "Invalid", `${kind} "${name}" is invalid: ${problems.join("; ")}`, { name, kind, causes: problems.map((message) => ({ message })) });
      return;
    }
    if (get(kind, namespace, name)) {
      status(res, 409, "AlreadyExists", `${kind} "${name}" already exists`, { name, kind });
      return;
    }
    const entry = stored(kind, namespace, object as Stored["object"]);
    put(entry, "ADDED");
    if (kind === "jobs") startJob(namespace, entry, scripts.get(name) ?? defaultScript);
    json(res, 201, entry.object);
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) status(res, 500, "InternalError", err instanceof Error ? err.message : String(err));
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, LOOPBACK, () => resolve());
  });
  const url = `http://${LOOPBACK}:${(server.address() as AddressInfo).port}`;

  return {
    url,
    requests,
    openWatches: (kind) => [...watches].filter((w) => kind === undefined || w.kind === kind).length,
    kubeConfig(namespace = "default") {
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: "fake", server: url, skipTLSVerify: true }],
        users: [{ name: "tester", token: "fake-token" }],
        contexts: [{ name: "fake", cluster: "fake", user: "tester", namespace }],
        currentContext: "fake",
      });
      return kc;
    },
    script(name, script) {
      scripts.set(name, script);
    },
    scriptDefault(script) {
      defaultScript = script;
    },
    finishJob(namespace, name, outcome) {
      finish(namespace, name, outcome);
    },
    job: (namespace, name) => get("jobs", namespace, name)?.object as V1Job | undefined,
    secret: (namespace, name) => get("secrets", namespace, name)?.object as V1Secret | undefined,
    pods: (namespace) => [...store.values()].filter((e) => e.kind === "pods" && e.namespace === namespace).map((e) => e.object as V1Pod),
    seedJob(namespace, job, script = { outcome: { result: "hold" } }) {
      const entry = stored("jobs", namespace, job as Stored["object"]);
      put(entry, "ADDED");
      startJob(namespace, entry, script);
      return entry.object as V1Job;
    },
    endWatches() {
      for (const watch of watches) watch.response.end();
      watches.clear();
    },
    goneOnNextWatches(count, { as = "event", kind = "jobs" } = {}) {
      gone = { count, as, kind };
    },
    stallNextWatches(count) {
      stalls = count;
    },
    compact() {
      compactedBelow = resourceVersion;
      history.length = 0;
    },
    async stop() {
      for (const timer of timers) clearTimeout(timer);
      for (const watch of watches) watch.response.destroy();
      watches.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
