import { randomBytes } from "node:crypto";
import { BatchV1Api, CoreV1Api, type KubeConfig, type V1Job, type V1Pod } from "@kubernetes/client-node";
import { LogLevel } from "../../../gen/mentatlab/v1/common_pb.js";
import type { ExecutionOutcome, Executor, ExecutorEvent, NodeTask } from "../executor.js";
import { logEvent } from "../../../agent-contract/plain-contract.js";
import type { KubernetesExecutorConfig } from "./config.js";
import { failureOf, jobPhase } from "./job-outcome.js";
import { agentContainerName, attemptLabels, buildJob, buildRunSecret, maxSecretBytes, secretBytes } from "./job-spec.js";
import { merge } from "./merge.js";
import { podChange } from "./pod-notices.js";
import { describeApiError, type WatchUpdate, watchResource } from "./resource-watch.js";

export interface KubernetesExecutorOptions {
  /** Where the API server is and how to authenticate (see `loadKubeConfig`). */
  readonly kubeConfig: KubeConfig;
  readonly config: KubernetesExecutorConfig;
}

/**
 * Runs each node attempt as a Kubernetes Job: the agent container beside the agent-sidecar as a
 * native sidecar, credentials in a per-Job Secret the Job owns. The sidecar reports events and
 * outputs to the orchestrator itself (ReportNodeEvents), so this executor only tracks the Job to its
 * end: success yields no outputs of its own (those already arrived as reported), failure yields the
 * reason Kubernetes recorded with the agent's last log lines. An abort deletes the Job.
 *
 * The Job name is a function of run, node and attempt, so creating an attempt's Job twice (an
 * orchestrator that restarted and re-drives the same attempt) adopts the Job that is already there.
 */
export class KubernetesExecutor implements Executor {
  private readonly batch: BatchV1Api;
  private readonly core: CoreV1Api;
  private readonly deletions = new Set<Promise<void>>();

  constructor(private readonly options: KubernetesExecutorOptions) {
    this.batch = options.kubeConfig.makeApiClient(BatchV1Api);
    this.core = options.kubeConfig.makeApiClient(CoreV1Api);
  }

  async *execute(task: NodeTask, signal: AbortSignal): AsyncIterable<ExecutorEvent> {
    if (!task.agent.image) {
      yield {
        kind: "failed",
        reason: `agent ${task.agent.id}@${task.agent.version} has no image: set "image" in its manifest to run it on Kubernetes`,
        transient: false,
      };
      return;
    }
    const { namespace } = this.options.config;
    const desired = buildJob(task, this.options.config);
    const name = desired.metadata?.name ?? "";
    const sidecarToken = randomBytes(24).toString("base64url");
    const secret = buildRunSecret(task, { name, uid: "" }, sidecarToken);
    // Refused before any object exists: the API server would take the Job, then refuse its Secret.
    if (secretBytes(secret) > maxSecretBytes) {
      yield {
        kind: "failed",
        reason: `the inline inputs and settings of node ${task.nodeId} take ${secretBytes(secret)} bytes, over the ${maxSecretBytes} a Kubernetes Secret holds: pass large values as media (upload them and bind the MediaRef)`,
        transient: false,
      };
      return;
    }

    const created = await this.createOrAdopt(task, desired);
    if (created.kind === "failed") {
      yield created;
      return;
    }
    // Whatever ends this attempt early (abort, a consumer that stops listening, a pod that cannot
    // start) deletes the Job; one that ran to its end stays for its TTL, for inspection.
    let jobEnded = false;
    try {
      yield {
        kind: "agent",
        event: logEvent(
          LogLevel.INFO,
          created.adopted ? `adopted Job ${namespace}/${name}, created earlier for this attempt` : `created Job ${namespace}/${name}`,
        ),
      };
      const secretFailure = await this.createSecret(task, name, created.uid, sidecarToken);
      if (secretFailure) {
        yield secretFailure;
        return;
      }
      const end = yield* this.follow(name, signal);
      if (signal.aborted) return;
      switch (end.kind) {
        case "hopeless":
          yield { kind: "failed", reason: end.reason, transient: false };
          return;
        case "deleted":
          jobEnded = true;
          yield { kind: "failed", reason: `Job ${namespace}/${name} was deleted before it finished`, transient: false };
          return;
        case "finished":
          jobEnded = true;
          if (jobPhase(end.job) === "succeeded") yield { kind: "succeeded", outputs: {} };
          else yield failureOf(end.job, ...(await this.agentPodAndLogs(name)));
          return;
      }
    } finally {
      if (!jobEnded) this.deleteJob(name);
    }
  }

  /**
   * Watches the Job until it ends, and its pod meanwhile, passing on what a person watching the run
   * wants to know (scheduling trouble, image pulls, the agent starting) and giving up early on a pod
   * that can never start. Ends as the Job ended, or when the signal aborts.
   */
  private async *follow(name: string, signal: AbortSignal): AsyncGenerator<ExecutorEvent, FollowEnd> {
    const { kubeConfig, config } = this.options;
    const { namespace } = config;
    const fieldSelector = `metadata.name=${name}`;
    const labelSelector = `batch.kubernetes.io/job-name=${name}`;
    // Stops both watches once the Job is done, not only on the caller's abort.
    const done = new AbortController();
    const watchSignal = AbortSignal.any([signal, done.signal]);
    const updates = merge<Followed>([
      tagged(
        "job",
        watchResource({
          kubeConfig,
          path: `/apis/batch/v1/namespaces/${namespace}/jobs`,
          fieldSelector,
          list: () => this.batch.listNamespacedJob({ namespace, fieldSelector }),
          signal: watchSignal,
          retryMaxMs: config.watchRetryMaxMs,
        }),
      ),
      tagged(
        "pod",
        watchResource({
          kubeConfig,
          path: `/api/v1/namespaces/${namespace}/pods`,
          labelSelector,
          list: () => this.core.listNamespacedPod({ namespace, labelSelector }),
          signal: watchSignal,
          retryMaxMs: config.watchRetryMaxMs,
        }),
      ),
    ]);
    const pods = new Map<string, V1Pod>();
    try {
      for await (const item of updates) {
        if (item.update.kind === "resync") {
          yield { kind: "agent", event: logEvent(LogLevel.DEBUG, item.update.why) };
          continue;
        }
        if (item.source === "pod") {
          if (item.update.kind === "deleted") continue;
          for (const pod of item.update.kind === "listed" ? item.update.objects : [item.update.object]) {
            const podName = pod.metadata?.name ?? "";
            const change = podChange(pods.get(podName), pod);
            pods.set(podName, pod);
            for (const notice of change.notices) yield { kind: "agent", event: logEvent(notice.level, notice.message) };
            if (change.fatal !== undefined) return { kind: "hopeless", reason: change.fatal };
          }
          continue;
        }
        const job = item.update.kind === "listed" ? item.update.objects[0] : item.update.kind === "changed" ? item.update.object : undefined;
        if (!job) return { kind: "deleted" };
        if (jobPhase(job) !== "running") return { kind: "finished", job };
      }
      return { kind: "deleted" };
    } finally {
      done.abort();
    }
  }

  private async agentPodAndLogs(jobName: string): Promise<[V1Pod | undefined, string[]]> {
    const pod = await this.agentPod(jobName);
    return [pod, pod ? await this.logTail(pod) : []];
  }

  /** Waits for the deletions of aborted attempts' Jobs still in flight. */
  async close(): Promise<void> {
    await Promise.all(this.deletions);
  }

  private async createOrAdopt(
    task: NodeTask,
    desired: V1Job,
  ): Promise<{ kind: "created"; uid: string; adopted: boolean } | Extract<ExecutionOutcome, { kind: "failed" }>> {
    const { namespace } = this.options.config;
    const name = desired.metadata?.name ?? "";
    try {
      const job = await this.batch.createNamespacedJob({ namespace, body: desired });
      return { kind: "created", uid: job.metadata?.uid ?? "", adopted: false };
    } catch (err) {
      if (codeOf(err) !== 409) return apiFailure(`could not create Job ${namespace}/${name}`, err);
    }
    let existing: V1Job;
    try {
      existing = await this.batch.readNamespacedJob({ name, namespace });
    } catch (err) {
      return apiFailure(`Job ${namespace}/${name} already exists but could not be read`, err);
    }
    const expected = attemptLabels(task);
    const labels = existing.metadata?.labels ?? {};
    if (Object.entries(expected).some(([key, value]) => labels[key] !== value)) {
      return {
        kind: "failed",
        reason: `Job ${namespace}/${name} already exists and belongs to another attempt (labels ${JSON.stringify(labels)})`,
        transient: false,
      };
    }
    return { kind: "created", uid: existing.metadata?.uid ?? "", adopted: true };
  }

  /** The attempt's credentials; an adopted Job may already have its Secret, which stays valid for the same attempt. */
  private async createSecret(
    task: NodeTask,
    name: string,
    uid: string,
    sidecarToken: string,
  ): Promise<Extract<ExecutionOutcome, { kind: "failed" }> | undefined> {
    const { namespace } = this.options.config;
    try {
      await this.core.createNamespacedSecret({ namespace, body: buildRunSecret(task, { name, uid }, sidecarToken) });
      return undefined;
    } catch (err) {
      return codeOf(err) === 409 ? undefined : apiFailure(`could not create Secret ${namespace}/${name}`, err);
    }
  }

  private deleteJob(name: string): void {
    const { namespace, deletePropagation } = this.options.config;
    const deletion = this.batch
      .deleteNamespacedJob({ name, namespace, propagationPolicy: deletePropagation })
      .then(
        () => undefined,
        // Already gone is what we wanted; anything else leaves it to activeDeadlineSeconds and the TTL.
        () => undefined,
      )
      .finally(() => this.deletions.delete(deletion));
    this.deletions.add(deletion);
  }

  /** The Job's pod (the newest, should the controller have made more than one). */
  private async agentPod(jobName: string): Promise<V1Pod | undefined> {
    try {
      const pods = await this.core.listNamespacedPod({ namespace: this.options.config.namespace, labelSelector: `batch.kubernetes.io/job-name=${jobName}` });
      return pods.items.sort((a, b) => timeOf(b) - timeOf(a))[0];
    } catch {
      return undefined;
    }
  }

  private async logTail(pod: V1Pod): Promise<string[]> {
    try {
      const text = await this.core.readNamespacedPodLog({
        name: pod.metadata?.name ?? "",
        namespace: this.options.config.namespace,
        container: agentContainerName,
        tailLines: this.options.config.logTailLines,
      });
      return text.replace(/\n$/, "").split("\n").slice(-this.options.config.logTailLines);
    } catch {
      // Logs are a courtesy: a pod whose node is gone has none, and the failure reason stands without them.
      return [];
    }
  }
}

/** How following a Job ended (an abort ends it too, and the caller checks its signal first). */
type FollowEnd = { readonly kind: "finished"; readonly job: V1Job } | { readonly kind: "deleted" } | { readonly kind: "hopeless"; readonly reason: string };

type Followed = { readonly source: "job"; readonly update: WatchUpdate<V1Job> } | { readonly source: "pod"; readonly update: WatchUpdate<V1Pod> };

async function* tagged<S extends Followed["source"], T>(source: S, updates: AsyncIterable<T>): AsyncGenerator<{ readonly source: S; readonly update: T }> {
  for await (const update of updates) yield { source, update };
}

function timeOf(pod: V1Pod): number {
  const created = pod.metadata?.creationTimestamp;
  return created ? new Date(created).getTime() : 0;
}

function codeOf(err: unknown): number | undefined {
  const code = typeof err === "object" && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === "number" ? code : undefined;
}

/** A failed API call: worth another attempt when the API server was unreachable, overloaded or broken; final when it refused the request. */
function apiFailure(what: string, err: unknown): Extract<ExecutionOutcome, { kind: "failed" }> {
  const code = codeOf(err);
  return { kind: "failed", reason: `${what}: ${describeApiError(err)}`, transient: code === undefined || code === 429 || code >= 500 };
}
