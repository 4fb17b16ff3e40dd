import { BatchV1Api, type V1Job, Watch } from "@kubernetes/client-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type FakeKubeApiServer, startFakeKubeApiServer } from "./fake-kube-apiserver.js";

const job = (name: string): V1Job => ({
  apiVersion: "batch/v1",
  kind: "Job",
  metadata: { name },
  spec: { backoffLimit: 0, template: { spec: { restartPolicy: "Never", containers: [{ name: "main", image: "busybox" }] } } },
});

let server: FakeKubeApiServer;
beforeEach(async () => {
  server = await startFakeKubeApiServer();
});
afterEach(async () => {
  await server.stop();
});

describe("fake kube-apiserver", () => {
  it("answers create 201, duplicate 409 and invalid 422 as the API server does", async () => {
    const batch = server.kubeConfig().makeApiClient(BatchV1Api);
    const created = await batch.createNamespacedJob({ namespace: "ns", body: job("one") });
    expect(created.metadata?.uid).toBeTruthy();
    await expect(batch.createNamespacedJob({ namespace: "ns", body: job("one") })).rejects.toMatchObject({ code: 409 });
    const invalid = job("two");
    invalid.spec!.template.spec!.restartPolicy = "Always";
    await expect(batch.createNamespacedJob({ namespace: "ns", body: invalid })).rejects.toMatchObject({ code: 422 });
    await expect(batch.createNamespacedJob({ namespace: "ns", body: job("Not_A_Name") })).rejects.toMatchObject({ code: 422 });
    expect(server.job("ns", "two")).toBeUndefined();
  });

  it("streams ADDED, MODIFIED and DELETED for a Job, marking a foreground deletion first", async () => {
    const kubeConfig = server.kubeConfig();
    const batch = kubeConfig.makeApiClient(BatchV1Api);
    server.script("w", { outcome: { result: "hold" } });
    const { metadata } = await batch.listNamespacedJob({ namespace: "ns" });
    const seen: string[] = [];
    const ended = new Promise<void>((resolve) => {
      void new Watch(kubeConfig).watch(
        "/apis/batch/v1/namespaces/ns/jobs",
        { resourceVersion: metadata?.resourceVersion },
        (type, object: V1Job) => {
          seen.push(`${type}${object.metadata?.deletionTimestamp ? " deleting" : ""}${object.status?.active ? " active" : ""}`);
          if (type === "DELETED") resolve();
        },
        () => resolve(),
      );
    });
    await batch.createNamespacedJob({ namespace: "ns", body: job("w") });
    while (!server.job("ns", "w")?.status?.active) await new Promise((r) => setTimeout(r, 5));
    await batch.deleteNamespacedJob({ name: "w", namespace: "ns", propagationPolicy: "Foreground" });
    await ended;
    expect(seen).toEqual(["ADDED", "MODIFIED active", "MODIFIED deleting active", "DELETED deleting active"]);
    expect(server.pods("ns")).toEqual([]);
  });

  it("runs a Job's pod to the scripted end", async () => {
    const batch = server.kubeConfig().makeApiClient(BatchV1Api);
    server.script("oom", { outcome: { result: "fail", exitCode: 137, reason: "OOMKilled" }, runMs: 1 });
    await batch.createNamespacedJob({ namespace: "ns", body: job("oom") });
    while (!server.job("ns", "oom")?.status?.failed) await new Promise((r) => setTimeout(r, 5));
    expect(server.job("ns", "oom")?.status?.conditions?.find((c) => c.type === "Failed")?.reason).toBe("BackoffLimitExceeded");
    expect(server.pods("ns")[0]?.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({ exitCode: 137, reason: "OOMKilled" });
  });
});
