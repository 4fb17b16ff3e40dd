import { create } from "@bufbuild/protobuf";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { PinValueSchema } from "../../../gen/mentatlab/v1/common_pb.js";
import { ResourceProfile } from "../../../gen/mentatlab/v1/registry_pb.js";
import { type FakeKubeApiServer, startFakeKubeApiServer, validateSecret } from "../../../test/harness/fake-kube-apiserver.js";
import type { ExecutorEvent, NodeTask } from "../executor.js";
import type { KubernetesExecutorConfig } from "./config.js";
import { jobName } from "./job-name.js";
import { buildJob, buildRunSecret, inputsKey, runTokenKey, sidecarTokenKey } from "./job-spec.js";
import { KubernetesExecutor } from "./kubernetes-executor.js";
import { testConfig, testRunToken, testTask } from "./testing.js";

const namespace = "agents";
let server: FakeKubeApiServer;

beforeEach(async () => {
  server = await startFakeKubeApiServer();
});
afterEach(async () => {
  await server.stop();
});

function executor(overrides: Partial<KubernetesExecutorConfig> = {}): KubernetesExecutor {
  return new KubernetesExecutor({ kubeConfig: server.kubeConfig(namespace), config: testConfig({ watchRetryMaxMs: 50, ...overrides }) });
}

async function collect(events: AsyncIterable<ExecutorEvent>): Promise<ExecutorEvent[]> {
  const seen: ExecutorEvent[] = [];
  for await (const event of events) seen.push(event);
  return seen;
}

async function until(condition: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

const outcomeOf = (events: readonly ExecutorEvent[]) => events.filter((e) => e.kind !== "agent");
const logsOf = (events: readonly ExecutorEvent[]) =>
  events.flatMap((e) => (e.kind === "agent" && e.event.event.case === "log" ? [e.event.event.value.message] : []));
const nameOf = (task: NodeTask) => jobName(task.runId, task.nodeId, task.attempt);
const watchRequests = () => server.requests.filter((r) => r.method === "GET" && r.path.endsWith("/jobs") && r.query["watch"] === "true");
const listRequests = () => server.requests.filter((r) => r.method === "GET" && r.path.endsWith("/jobs") && r.query["watch"] !== "true");

describe("KubernetesExecutor", () => {
  it("creates a valid Job with its token Secret and succeeds with the outputs the sidecar reported", async () => {
    const task = testTask({ profile: ResourceProfile.VIDEO_PROCESSING });
    const events = await collect(executor().execute(task, new AbortController().signal));
    expect(outcomeOf(events)).toEqual([{ kind: "succeeded", outputs: {} }]);
    expect(logsOf(events)[0]).toBe(`created Job ${namespace}/${nameOf(task)}`);
    const job = server.job(namespace, nameOf(task));
    expect(job?.spec?.template.spec?.containers[0]?.resources?.limits?.["nvidia.com/gpu"]).toBe("1");
    expect(JSON.stringify(job)).not.toContain(testRunToken);
    const secret = server.secret(namespace, nameOf(task));
    expect(secret?.stringData?.[runTokenKey]).toBe(testRunToken);
    expect(secret?.metadata?.ownerReferences?.[0]).toMatchObject({ kind: "Job", name: nameOf(task), uid: job?.metadata?.uid });
  });

  it("reports exit code 3 as a transient failure, with the agent's last log lines", async () => {
    const task = testTask();
    const logs = Array.from({ length: 30 }, (_, i) => `line ${i + 1}`);
    server.script(nameOf(task), { outcome: { result: "fail", exitCode: 3 }, logs });
    const [outcome] = outcomeOf(await collect(executor({ logTailLines: 5 }).execute(task, new AbortController().signal)));
    expect(outcome).toMatchObject({ kind: "failed", transient: true });
    const reason = outcome?.kind === "failed" ? outcome.reason : "";
    expect(reason).toContain("agent exited with code 3");
    expect(reason).toContain("line 26\nline 27\nline 28\nline 29\nline 30");
    expect(reason).not.toContain("line 25");
  });

  it("reports other exit codes as final failures", async () => {
    const task = testTask();
    server.script(nameOf(task), { outcome: { result: "fail", exitCode: 1 }, logs: ["Traceback: boom"] });
    const [outcome] = outcomeOf(await collect(executor().execute(task, new AbortController().signal)));
    expect(outcome).toEqual({ kind: "failed", reason: "agent exited with code 1\nlast log lines:\nTraceback: boom", transient: false });
  });

  it("reports OOMKilled as final, naming the memory limit", async () => {
    const task = testTask({ profile: ResourceProfile.AUDIO_PROCESSING });
    server.script(nameOf(task), { outcome: { result: "fail", exitCode: 137, reason: "OOMKilled" } });
    const [outcome] = outcomeOf(await collect(executor().execute(task, new AbortController().signal)));
    expect(outcome).toEqual({ kind: "failed", reason: "agent was killed for running out of memory (OOMKilled, limit 2Gi)", transient: false });
  });

  it("reports a Job past its deadline as final", async () => {
    const task = testTask({ timeoutMs: 5000 });
    server.script(nameOf(task), { outcome: { result: "deadline" } });
    const [outcome] = outcomeOf(await collect(executor().execute(task, new AbortController().signal)));
    expect(outcome).toEqual({ kind: "failed", reason: "agent ran past its deadline of 5 s (DeadlineExceeded)", transient: false });
  });

  it("resumes a watch that ended from the last resourceVersion, missing nothing that happened in between", async () => {
    const task = testTask();
    server.script(nameOf(task), { outcome: { result: "hold" } });
    const running = collect(executor().execute(task, new AbortController().signal));
    await until(() => server.openWatches("jobs") === 1 && server.pods(namespace).length === 1, "the Job to run under a watch");
    server.endWatches();
    // Finished while no watch is open: only a resumed watch replaying from its version can see it.
    server.finishJob(namespace, nameOf(task), { result: "succeed" });
    expect(outcomeOf(await running)).toEqual([{ kind: "succeeded", outputs: {} }]);
    const watches = watchRequests();
    expect(watches.length).toBeGreaterThanOrEqual(2);
    // Resumed from where the first watch got to, not from a fresh list.
    expect(Number(watches[1]?.query["resourceVersion"])).toBeGreaterThanOrEqual(Number(watches[0]?.query["resourceVersion"]));
    expect(listRequests()).toHaveLength(1);
  });

  it("lists again after 410 Gone, whether it comes as a watch event or as a status", async () => {
    for (const as of ["event", "status"] as const) {
      const task = testTask({ nodeId: `gone-${as}` });
      server.script(nameOf(task), { outcome: { result: "hold" } });
      const listsBefore = listRequests().length;
      server.goneOnNextWatches(1, { as });
      const running = collect(executor().execute(task, new AbortController().signal));
      await until(() => server.openWatches("jobs") === 1, "a watch after the relist");
      server.finishJob(namespace, nameOf(task), { result: "fail", exitCode: 3 });
      const events = await running;
      expect(outcomeOf(events)).toMatchObject([{ kind: "failed", transient: true }]);
      expect(listRequests().length - listsBefore).toBe(2);
      expect(logsOf(events).some((m) => m.includes("410 Gone"))).toBe(true);
    }
  });

  it("lists again when the version it resumes from was compacted away", async () => {
    const task = testTask();
    server.script(nameOf(task), { outcome: { result: "hold" } });
    const running = collect(executor().execute(task, new AbortController().signal));
    await until(() => server.openWatches("jobs") === 1 && server.pods(namespace).length === 1, "the Job to run under a watch");
    server.finishJob(namespace, nameOf(task), { result: "succeed" });
    server.compact();
    server.endWatches();
    expect(outcomeOf(await running)).toEqual([{ kind: "succeeded", outputs: {} }]);
  });

  it("deletes the Job when the attempt is aborted, and its Secret goes with it", async () => {
    const task = testTask();
    server.script(nameOf(task), { outcome: { result: "hold" } });
    const controller = new AbortController();
    const kube = executor();
    const running = collect(kube.execute(task, controller.signal));
    await until(() => server.openWatches("jobs") === 1 && server.secret(namespace, nameOf(task)) !== undefined, "the Job and its Secret");
    controller.abort("cancelled");
    expect(outcomeOf(await running)).toEqual([]);
    await kube.close();
    const deletes = server.requests.filter((r) => r.method === "DELETE");
    expect(deletes).toHaveLength(1);
    expect(deletes[0]?.path).toBe(`/apis/batch/v1/namespaces/${namespace}/jobs/${nameOf(task)}`);
    expect(deletes[0]?.query["propagationPolicy"]).toBe("Background");
    expect(server.job(namespace, nameOf(task))).toBeUndefined();
    await until(() => server.secret(namespace, nameOf(task)) === undefined && server.pods(namespace).length === 0, "the garbage collector");
  });

  it("deletes in the foreground when configured to", async () => {
    const task = testTask();
    server.script(nameOf(task), { outcome: { result: "hold" } });
    const controller = new AbortController();
    const kube = executor({ deletePropagation: "Foreground" });
    const running = collect(kube.execute(task, controller.signal));
    await until(() => server.openWatches("jobs") === 1, "the watch");
    controller.abort("cancelled");
    await running;
    await kube.close();
    expect(server.requests.find((r) => r.method === "DELETE")?.query["propagationPolicy"]).toBe("Foreground");
    expect(server.job(namespace, nameOf(task))).toBeUndefined();
  });

  it("adopts the Job of the same attempt that already exists (409) instead of failing", async () => {
    const task = testTask();
    const seeded = server.seedJob(namespace, buildJob(task, testConfig()));
    const running = collect(executor().execute(task, new AbortController().signal));
    await until(() => server.openWatches("jobs") === 1, "the watch on the adopted Job");
    server.finishJob(namespace, nameOf(task), { result: "succeed" });
    const events = await running;
    expect(outcomeOf(events)).toEqual([{ kind: "succeeded", outputs: {} }]);
    expect(logsOf(events)[0]).toBe(`adopted Job ${namespace}/${nameOf(task)}, created earlier for this attempt`);
    expect(server.requests.filter((r) => r.method === "POST" && r.path.endsWith("/jobs"))).toHaveLength(1);
    expect(server.secret(namespace, nameOf(task))?.metadata?.ownerReferences?.[0]?.uid).toBe(seeded.metadata?.uid);
  });

  it("adopts a Job that already finished", async () => {
    const task = testTask();
    server.seedJob(namespace, buildJob(task, testConfig()), { outcome: { result: "fail", exitCode: 3 }, runMs: 0 });
    await until(() => server.job(namespace, nameOf(task))?.status?.failed === 1, "the seeded Job to fail");
    const [outcome] = outcomeOf(await collect(executor().execute(task, new AbortController().signal)));
    expect(outcome).toMatchObject({ kind: "failed", transient: true });
  });

  it("refuses to adopt a Job of the same name that belongs to another attempt", async () => {
    const task = testTask();
    const other = buildJob(task, testConfig());
    other.metadata!.labels = { ...other.metadata!.labels, "mentatlab.dev/attempt": "9" };
    server.seedJob(namespace, other);
    const [outcome] = outcomeOf(await collect(executor().execute(task, new AbortController().signal)));
    expect(outcome).toMatchObject({ kind: "failed", transient: false });
    expect(outcome?.kind === "failed" ? outcome.reason : "").toContain("belongs to another attempt");
  });

  it("fails for good when the API server rejects the Job (422), saying why", async () => {
    const task = testTask();
    const [outcome] = outcomeOf(await collect(executor({ sidecarImage: "" }).execute(task, new AbortController().signal)));
    expect(outcome).toMatchObject({ kind: "failed", transient: false });
    expect(outcome?.kind === "failed" ? outcome.reason : "").toMatch(/could not create Job agents\/ml-echo-node-a1-[0-9a-f]+: 422 .*image: required/);
    expect(server.job(namespace, nameOf(task))).toBeUndefined();
  });

  it("fails without calling the API server when the manifest has no image", async () => {
    const base = testTask();
    const task = testTask({ agent: { ...base.agent, image: "" } });
    const [outcome] = outcomeOf(await collect(executor().execute(task, new AbortController().signal)));
    expect(outcome).toMatchObject({ kind: "failed", transient: false });
    expect(server.requests).toHaveLength(0);
  });

  it("reports an unreachable API server as a transient failure", async () => {
    const kube = executor();
    await server.stop();
    const [outcome] = outcomeOf(await collect(kube.execute(testTask(), new AbortController().signal)));
    expect(outcome).toMatchObject({ kind: "failed", transient: true });
    server = await startFakeKubeApiServer();
  });

  it("fails when someone else deletes the Job while it runs", async () => {
    const task = testTask();
    server.script(nameOf(task), { outcome: { result: "hold" } });
    const running = collect(executor().execute(task, new AbortController().signal));
    await until(() => server.openWatches("jobs") === 1, "the watch");
    await fetch(`${server.url}/apis/batch/v1/namespaces/${namespace}/jobs/${nameOf(task)}`, { method: "DELETE" });
    expect(outcomeOf(await running)).toEqual([{ kind: "failed", reason: `Job ${namespace}/${nameOf(task)} was deleted before it finished`, transient: false }]);
  });

  it("tells the run what the pod is doing: sidecar ready, agent started", async () => {
    const task = testTask();
    const events = await collect(executor().execute(task, new AbortController().signal));
    expect(logsOf(events)).toEqual([`created Job ${namespace}/${nameOf(task)}`, "sidecar is ready", "agent container started"]);
  });

  it("warns while no node can take the pod, and keeps waiting", async () => {
    const task = testTask({ profile: ResourceProfile.VIDEO_PROCESSING });
    server.script(nameOf(task), { outcome: { result: "hold" }, stuck: { unschedulable: "0/3 nodes are available: 3 Insufficient nvidia.com/gpu." } });
    const controller = new AbortController();
    const seen: ExecutorEvent[] = [];
    const running = (async () => {
      for await (const event of executor().execute(task, controller.signal)) seen.push(event);
    })();
    await until(() => logsOf(seen).some((m) => m.includes("Insufficient nvidia.com/gpu")), "the scheduling warning");
    expect(logsOf(seen)).toContain(
      `pod ${server.pods(namespace)[0]?.metadata?.name} cannot be scheduled yet: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu.`,
    );
    controller.abort("cancelled");
    await running;
    expect(outcomeOf(seen)).toEqual([]);
  });

  it("fails at once, deleting the Job, when the agent's image can never be pulled", async () => {
    const task = testTask();
    server.script(nameOf(task), {
      outcome: { result: "hold" },
      stuck: { container: "agent", waiting: "InvalidImageName", message: 'couldn\'t parse image name "registry.example/echo:1.0.0"' },
    });
    const kube = executor();
    const [outcome] = outcomeOf(await collect(kube.execute(task, new AbortController().signal)));
    expect(outcome).toEqual({
      kind: "failed",
      reason: `agent container is waiting: InvalidImageName: couldn't parse image name "registry.example/echo:1.0.0" (image registry.example/echo:1.0.0)`,
      transient: false,
    });
    await kube.close();
    expect(server.job(namespace, nameOf(task))).toBeUndefined();
  });

  it("keeps waiting through image pull back-off, which may resolve", async () => {
    const task = testTask();
    server.script(nameOf(task), {
      outcome: { result: "hold" },
      stuck: { container: "sidecar", waiting: "ImagePullBackOff", message: "Back-off pulling image" },
    });
    const seen: ExecutorEvent[] = [];
    const running = (async () => {
      for await (const event of executor().execute(task, new AbortController().signal)) seen.push(event);
    })();
    await until(() => logsOf(seen).includes("sidecar container is waiting: ImagePullBackOff: Back-off pulling image"), "the pull warning");
    server.finishJob(namespace, nameOf(task), { result: "succeed" });
    await running;
    expect(outcomeOf(seen)).toEqual([{ kind: "succeeded", outputs: {} }]);
  });

  it("resumes the pod watch after 410 Gone too", async () => {
    const task = testTask();
    server.script(nameOf(task), { outcome: { result: "hold" } });
    server.goneOnNextWatches(1, { kind: "pods" });
    const running = collect(executor().execute(task, new AbortController().signal));
    await until(() => server.openWatches("pods") === 1 && server.openWatches("jobs") === 1, "both watches");
    server.finishJob(namespace, nameOf(task), { result: "succeed" });
    const events = await running;
    expect(outcomeOf(events)).toEqual([{ kind: "succeeded", outputs: {} }]);
    const podLists = server.requests.filter((r) => r.method === "GET" && r.path.endsWith("/pods") && r.query["watch"] !== "true");
    expect(podLists).toHaveLength(2);
  });

  it("leaves no watch open once the attempt is over", async () => {
    await collect(executor().execute(testTask(), new AbortController().signal));
    await until(() => server.openWatches() === 0, "the watches to close");
  });

  it("deletes the Job when its consumer stops listening before the end", async () => {
    const task = testTask();
    server.script(nameOf(task), { outcome: { result: "hold" } });
    const kube = executor();
    for await (const event of kube.execute(task, new AbortController().signal)) {
      if (event.kind === "agent" && event.event.event.case === "log" && event.event.event.value.message === "agent container started") break;
    }
    await kube.close();
    expect(server.job(namespace, nameOf(task))).toBeUndefined();
    await until(() => server.openWatches() === 0, "the watches to close");
  });

  it("stops at once on abort even while the API server has not answered its watch", async () => {
    const task = testTask();
    server.script(nameOf(task), { outcome: { result: "hold" } });
    server.stallNextWatches(2);
    const controller = new AbortController();
    const kube = executor();
    const running = collect(kube.execute(task, controller.signal));
    await until(() => watchRequests().length === 1, "the stalled watch");
    const abortedAt = Date.now();
    controller.abort("cancelled");
    expect(outcomeOf(await running)).toEqual([]);
    // Not after the client's own 30 s timeout on the stalled request.
    expect(Date.now() - abortedAt).toBeLessThan(2000);
    await kube.close();
    expect(server.job(namespace, nameOf(task))).toBeUndefined();
  });

  describe("secrets and inline inputs", () => {
    // 200 KiB of text: more than one environment string may hold, less than a Secret.
    const marker = "INLINE-INPUT-3f9c1e";
    const largeInput = () => create(PinValueSchema, { value: { case: "text", value: `${marker} ${"lorem ipsum ".repeat(17_000)}` } });

    for (const outcome of [{ result: "succeed" }, { result: "fail", exitCode: 1 }] as const) {
      it(`appear only in the attempt's Secret, never in the Job, its pod, other requests or the run's events (${outcome.result})`, async () => {
        const task = testTask({ inputs: { text: largeInput() } });
        server.script(nameOf(task), { outcome, logs: ["agent started", "agent done"] });
        const events = await collect(executor().execute(task, new AbortController().signal));
        const secret = server.secret(namespace, nameOf(task));
        const sidecarToken = secret?.stringData?.[sidecarTokenKey] ?? "";
        expect(secret?.stringData?.[runTokenKey]).toBe(testRunToken);
        expect(secret?.stringData?.[inputsKey]).toContain(marker);
        expect(sidecarToken.length).toBeGreaterThanOrEqual(32);

        const secretCreations = server.requests.filter((r) => r.method === "POST" && r.path.endsWith("/secrets"));
        expect(secretCreations).toHaveLength(1);
        const everythingElse = JSON.stringify(
          [server.requests.filter((r) => !secretCreations.includes(r)), server.job(namespace, nameOf(task)), server.pods(namespace), events],
          (_key, value: unknown) => (typeof value === "bigint" ? String(value) : value),
        );
        expect(everythingElse).toContain(nameOf(task));
        for (const secretValue of [testRunToken, sidecarToken, marker]) expect(everythingElse).not.toContain(secretValue);
      });
    }

    it("refuses inline inputs larger than a Secret holds, before creating anything", async () => {
      const task = testTask({ inputs: { text: create(PinValueSchema, { value: { case: "text", value: "x".repeat(1024 * 1024 + 1) } }) } });
      const events = await collect(executor().execute(task, new AbortController().signal));
      expect(outcomeOf(events)).toEqual([
        {
          kind: "failed",
          reason: expect.stringMatching(/node echo_Node take \d+ bytes, over the 1048576 a Kubernetes Secret holds: pass large values as media/),
          transient: false,
        },
      ]);
      expect(server.requests.filter((r) => r.method === "POST")).toEqual([]);
    });

    it("the fake API server refuses a Secret over 1 MiB, as a real one does", () => {
      const secret = buildRunSecret(
        testTask({ inputs: { text: create(PinValueSchema, { value: { case: "text", value: "x".repeat(1024 * 1024) } }) } }),
        { name: "s", uid: "u" },
        "t",
      );
      expect(validateSecret(secret).join("\n")).toMatch(/data: Too long: must have at most 1048576 bytes/);
    });
  });
});
