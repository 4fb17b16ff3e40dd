import { describe, expect, it } from "vitest";
import { loadSidecarConfig } from "../../../agent-sidecar/config.js";
import { Capability, ResourceProfile } from "../../../gen/mentatlab/v1/registry_pb.js";
import { validateJob, validateSecret } from "../../../test/harness/fake-kube-apiserver.js";
import { agentContainerName, buildJob, buildRunSecret, inputsKey, labelKeys, runTokenKey, sidecarContainerName, sidecarTokenKey } from "./job-spec.js";
import { attemptEnvKeys } from "./sidecar-parts.js";
import { plainBridgeEnv, plainBridgeScript } from "./plain-bridge.js";
import { testConfig, testRunToken, testTask } from "./testing.js";

describe("buildJob", () => {
  it("builds a Job the API server accepts, for every profile", () => {
    for (const profile of [
      ResourceProfile.TEXT_PROCESSING,
      ResourceProfile.IMAGE_PROCESSING,
      ResourceProfile.AUDIO_PROCESSING,
      ResourceProfile.VIDEO_PROCESSING,
    ]) {
      expect(validateJob(buildJob(testTask({ profile }), testConfig()))).toEqual([]);
    }
  });

  it("is what the validator rejects once broken (the validator is not a yes-man)", () => {
    const job = buildJob(testTask(), testConfig());
    const broken = structuredClone(job);
    broken.spec!.template.spec!.containers[0]!.resources = { limits: { cpu: "lots" } };
    (broken.spec!.template.spec!.initContainers![0] as unknown as Record<string, unknown>)["restartPolicyy"] = "Always";
    broken.metadata!.name = "Bad_Name";
    const problems = validateJob(broken).join("\n");
    expect(problems).toContain("cpu");
    expect(problems).toContain("restartPolicyy: unknown field");
    expect(problems).toContain("metadata.name");
  });

  it("leaves retries to the orchestrator and bounds the attempt in time", () => {
    const job = buildJob(testTask({ timeoutMs: 90_500 }), testConfig({ jobTtlSeconds: 120 }));
    expect(job.spec).toMatchObject({ backoffLimit: 0, activeDeadlineSeconds: 91, ttlSecondsAfterFinished: 120 });
    expect(job.spec?.template.spec?.restartPolicy).toBe("Never");
    expect(job.metadata?.namespace).toBeUndefined();
  });

  it("labels the Job and its pods with run, node, attempt and workspace", () => {
    const job = buildJob(testTask({ attempt: 4, workspace: "team/α" }), testConfig());
    const expected = {
      [labelKeys.run]: "run_00abc1234f00dfeedbeef1234",
      [labelKeys.node]: "echo_Node",
      [labelKeys.attempt]: "4",
      [labelKeys.workspace]: "team",
    };
    expect(job.metadata?.labels).toMatchObject(expected);
    expect(job.spec?.template.metadata?.labels).toMatchObject(expected);
    expect(job.metadata?.annotations?.["mentatlab.dev/workspace"]).toBe("team/α");
  });

  it("runs the sidecar natively, before the agent, ready once it serves", () => {
    const pod = buildJob(testTask(), testConfig()).spec!.template.spec!;
    const [sidecar] = pod.initContainers ?? [];
    expect(pod.initContainers).toHaveLength(1);
    expect(sidecar).toMatchObject({ name: sidecarContainerName, image: "mentatlab/agent-sidecar:test", restartPolicy: "Always" });
    expect(sidecar?.startupProbe?.exec?.command?.at(-1)).toBe("/mentatlab/shared/sidecar.ready");
    expect(sidecar?.readinessProbe?.exec?.command).toEqual(sidecar?.startupProbe?.exec?.command);
    const name = buildJob(testTask(), testConfig()).metadata?.name;
    const literal = Object.fromEntries((sidecar?.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
    expect(literal).toEqual({
      MENTATLAB_GATEWAY_URL: "http://mentatlab-gateway:8080",
      MENTATLAB_SHARED_DIR: "/mentatlab/shared",
      MENTATLAB_SIDECAR_LISTEN: "/mentatlab/shared/sidecar.sock",
      MENTATLAB_INPUTS_FILE: "/mentatlab/attempt/inputs.json",
    });
    const refs = (sidecar?.env ?? []).filter((e) => e.valueFrom).map((e) => e.valueFrom?.secretKeyRef);
    expect(refs.every((ref) => ref?.name === name)).toBe(true);
    expect(refs.filter((ref) => !ref?.optional).map((ref) => ref?.key)).toEqual(["MENTATLAB_RUN_ID", "MENTATLAB_NODE_ID", runTokenKey, sidecarTokenKey]);
    expect(sidecar?.volumeMounts).toContainEqual({ name: "mentatlab-attempt", mountPath: "/mentatlab/attempt", readOnly: true });
    expect(pod.volumes).toContainEqual({
      name: "mentatlab-attempt",
      secret: { secretName: name, items: [{ key: inputsKey, path: inputsKey }], defaultMode: 0o444 },
    });
  });

  it("hands the sidecar its attempt through the Secret, whose keys the sidecar's config reads", () => {
    const task = testTask();
    const job = buildJob(task, testConfig());
    const secret = buildRunSecret(task, { name: job.metadata!.name!, uid: "uid-1" }, "pod-token");
    const sidecar = job.spec!.template.spec!.initContainers![0]!;
    // What the kubelet does: literal values, and each secretKeyRef looked up in the Secret.
    const env = Object.fromEntries(
      (sidecar.env ?? []).flatMap((e) => {
        const value = e.value ?? secret.stringData?.[e.valueFrom?.secretKeyRef?.key ?? ""];
        return value === undefined ? [] : [[e.name, value]];
      }),
    );
    const config = loadSidecarConfig({ ...env, MENTATLAB_INPUTS_FILE: undefined, MENTATLAB_INPUTS_JSON: secret.stringData?.[inputsKey] });
    expect(config).toMatchObject({
      runId: task.runId,
      nodeId: "echo_Node",
      attempt: 1,
      workspace: "ws-alpha",
      runToken: testRunToken,
      sidecarToken: "pod-token",
      params: { shout: true },
      gatewayUrl: "http://mentatlab-gateway:8080",
      listen: "/mentatlab/shared/sidecar.sock",
    });
    expect(config.inputs.get("text")?.value).toEqual({ case: "text", value: "hello" });
    expect(JSON.parse(secret.stringData!["MENTATLAB_OUTPUT_PINS_JSON"] ?? "")).toEqual({ echo: "text" });
    // Every key the sidecar's env names is one the Secret has.
    for (const key of attemptEnvKeys) expect(Object.keys(secret.stringData ?? {}), key).toContain(key);
  });

  it("gives the agent the sidecar's address and token, the manifest's image and env, and no run token", () => {
    const job = buildJob(testTask(), testConfig());
    const [agent] = job.spec!.template.spec!.containers;
    expect(agent).toMatchObject({ name: agentContainerName, image: "registry.example/echo:1.0.0" });
    const env = Object.fromEntries((agent?.env ?? []).map((e) => [e.name, e]));
    expect(env["LOG_LEVEL"]?.value).toBe("debug");
    expect(env["MENTATLAB_SIDECAR_ADDRESS"]?.value).toBe("/mentatlab/shared/sidecar.sock");
    expect(env["MENTATLAB_SIDECAR_TOKEN"]?.valueFrom?.secretKeyRef?.key).toBe(sidecarTokenKey);
    expect(env["MENTATLAB_RUN_TOKEN"]).toBeUndefined();
    const mounts = (c: typeof agent) => c?.volumeMounts?.map((m) => m.mountPath);
    expect(mounts(agent)).toEqual(["/mentatlab/shared"]);
    // The attempt's inputs file (and so its Secret) is the sidecar's alone.
    expect(mounts(job.spec!.template.spec!.initContainers![0])).toEqual(["/mentatlab/shared", "/mentatlab/attempt"]);
  });

  it("never puts the run token in the Job, only in its Secret", () => {
    const task = testTask();
    const job = buildJob(task, testConfig());
    expect(JSON.stringify(job)).not.toContain(testRunToken);
    const secret = buildRunSecret(task, { name: job.metadata!.name!, uid: "uid-1" }, "pod-token");
    expect(validateSecret(secret)).toEqual([]);
    expect(secret.stringData).toMatchObject({ [runTokenKey]: testRunToken, [sidecarTokenKey]: "pod-token" });
    expect(secret.metadata?.ownerReferences).toEqual([
      { apiVersion: "batch/v1", kind: "Job", name: job.metadata?.name, uid: "uid-1", blockOwnerDeletion: true },
    ]);
  });

  it("requests the profile's resources, with a GPU for video", () => {
    const resourcesOf = (profile: ResourceProfile) => buildJob(testTask({ profile }), testConfig()).spec!.template.spec!.containers[0]!.resources;
    expect(resourcesOf(ResourceProfile.TEXT_PROCESSING)).toEqual({
      requests: { cpu: "500m", memory: "1Gi", "ephemeral-storage": "1Gi" },
      limits: { cpu: "500m", memory: "1Gi", "ephemeral-storage": "1Gi" },
    });
    expect(resourcesOf(ResourceProfile.IMAGE_PROCESSING)?.limits).toEqual({ cpu: "2000m", memory: "4Gi", "ephemeral-storage": "10Gi" });
    expect(resourcesOf(ResourceProfile.AUDIO_PROCESSING)?.limits).toEqual({ cpu: "1000m", memory: "2Gi", "ephemeral-storage": "5Gi" });
    const video = resourcesOf(ResourceProfile.VIDEO_PROCESSING);
    expect(video?.limits).toEqual({ cpu: "4000m", memory: "8Gi", "ephemeral-storage": "50Gi", "nvidia.com/gpu": "1" });
    expect(video?.requests?.["nvidia.com/gpu"]).toBe("1");
  });

  it("gives a GPU to the agents that declare the gpu capability, whatever their profile", () => {
    const task = testTask({ profile: ResourceProfile.AUDIO_PROCESSING });
    task.agent.capabilities = [Capability.STREAMING, Capability.GPU];
    const resources = buildJob(task, testConfig()).spec!.template.spec!.containers[0]!.resources;
    expect(resources?.limits).toMatchObject({ cpu: "1000m", "nvidia.com/gpu": "1" });
    expect(resources?.requests?.["nvidia.com/gpu"]).toBe("1");
  });

  it("places GPU pods with the configured node selector, tolerations and runtime class, and only GPU pods", () => {
    const gpuScheduling = {
      nodeSelector: { "cloud.google.com/gke-accelerator": "nvidia-l4" },
      tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
      runtimeClassName: "nvidia",
    };
    const config = testConfig({ gpuScheduling });
    const video = buildJob(testTask({ profile: ResourceProfile.VIDEO_PROCESSING }), config);
    expect(validateJob(video)).toEqual([]);
    expect(video.spec!.template.spec).toMatchObject(gpuScheduling);
    const text = buildJob(testTask(), config).spec!.template.spec!;
    expect([text.nodeSelector, text.tolerations, text.runtimeClassName]).toEqual([undefined, undefined, undefined]);
    // The defaults tolerate the usual GPU taint and pin nothing else.
    const defaults = buildJob(testTask({ profile: ResourceProfile.VIDEO_PROCESSING }), testConfig()).spec!.template.spec!;
    expect([defaults.nodeSelector, defaults.tolerations, defaults.runtimeClassName]).toEqual([
      undefined,
      [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
      undefined,
    ]);
  });

  it("runs as non-root, without privilege escalation or an API token", () => {
    const pod = buildJob(testTask(), testConfig({ runAsUser: 4242 })).spec!.template.spec!;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 4242 });
    expect(pod.automountServiceAccountToken).toBe(false);
    for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
      expect(c.securityContext).toMatchObject({ runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } });
    }
  });

  describe("a plain-contract agent (manifest command)", () => {
    const plainTask = (command: string[]) => {
      const task = testTask();
      task.agent.command = command;
      return task;
    };
    const envOf = (c: { env?: { name: string; value?: string }[] } | undefined) => Object.fromEntries((c?.env ?? []).map((e) => [e.name, e.value]));

    it("runs the bridge wrapper with the manifest command as positional arguments, and bridges the sidecar", () => {
      const command = ["python3", "agent.py", "--say", 'it\'s "quoted" $(rm -rf /) `x` ; done'];
      const job = buildJob(plainTask(command), testConfig());
      expect(validateJob(job)).toEqual([]);
      const pod = job.spec!.template.spec!;
      const [agent] = pod.containers;
      expect(agent?.command).toEqual(["/bin/sh", "-c", plainBridgeScript, "agent", ...command]);
      // The script never contains the command: it only runs "$@".
      expect(plainBridgeScript).not.toContain("agent.py");
      expect(agent?.args).toBeUndefined();
      expect(envOf(agent)[plainBridgeEnv]).toBe("/mentatlab/shared/plain");
      expect(envOf(pod.initContainers![0])[plainBridgeEnv]).toBe("/mentatlab/shared/plain");
    });

    it("runs only the agent of a manifest command that wraps the local sidecar", () => {
      const job = buildJob(plainTask(["node", "--import", "tsx", "agent-sidecar/main.ts", "--", "/usr/bin/python3", "agent.py"]), testConfig());
      expect(job.spec!.template.spec!.containers[0]?.command?.slice(4)).toEqual(["/usr/bin/python3", "agent.py"]);
    });

    it("leaves an SDK agent (no command) to its image's entrypoint, without a bridge", () => {
      const job = buildJob(testTask(), testConfig());
      const pod = job.spec!.template.spec!;
      expect(pod.containers[0]?.command).toBeUndefined();
      expect(envOf(pod.containers[0])[plainBridgeEnv]).toBeUndefined();
      expect(envOf(pod.initContainers![0])[plainBridgeEnv]).toBeUndefined();
    });
  });
});
