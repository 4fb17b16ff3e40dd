import type { V1PodSpec } from "@kubernetes/client-node";
import { containersOf, podSpecOf, type KubeObject } from "./kube-object.js";

/** Containers that could run as root: neither the pod nor the container forbids it, or uid 0 is asked for. */
export function rootContainers(object: KubeObject): string[] {
  const pod = podSpecOf(object);
  if (!pod) return [];
  return containersOf(pod)
    .filter(({ container }) => {
      const nonRoot = container.securityContext?.runAsNonRoot ?? pod.securityContext?.runAsNonRoot ?? false;
      const uid = container.securityContext?.runAsUser ?? pod.securityContext?.runAsUser;
      return !nonRoot || uid === 0;
    })
    .map(({ path }) => `${object.kind}/${object.metadata?.name} ${path}`);
}

/** Containers that are not locked down: privilege escalation allowed, capabilities kept, or a writable root filesystem. */
export function unhardenedContainers(object: KubeObject, options: { readOnlyRoot: boolean }): string[] {
  const pod = podSpecOf(object);
  if (!pod) return [];
  return containersOf(pod)
    .filter(({ container }) => {
      const security = container.securityContext;
      const dropsAll = security?.capabilities?.drop?.includes("ALL") ?? false;
      return security?.allowPrivilegeEscalation !== false || !dropsAll || (options.readOnlyRoot && security.readOnlyRootFilesystem !== true);
    })
    .map(({ path }) => `${object.kind}/${object.metadata?.name} ${path}`);
}

/** Where any of `secrets` shows up in a container's command, args or literal env values: it should come from a Secret reference. */
export function exposedSecrets(object: KubeObject, secrets: readonly string[]): string[] {
  const pod = podSpecOf(object);
  if (!pod) return [];
  const found: string[] = [];
  for (const { container, path } of containersOf(pod)) {
    const literals = [
      ...(container.command ?? []).map((text) => ({ text, where: "command" })),
      ...(container.args ?? []).map((text) => ({ text, where: "args" })),
      ...(container.env ?? []).map((env) => ({ text: env.value ?? "", where: `env ${env.name}` })),
    ];
    for (const { text, where } of literals) {
      for (const secret of secrets) if (text.includes(secret)) found.push(`${object.kind}/${object.metadata?.name} ${path} ${where}`);
    }
  }
  return found;
}

/** Credential-looking env vars given as literal values rather than from a Secret. */
export function literalCredentialEnv(object: KubeObject): string[] {
  const pod = podSpecOf(object);
  if (!pod) return [];
  const credential = /(SECRET|PASSWORD|TOKEN)$|ACCESS_KEY|_KEY$/;
  return containersOf(pod).flatMap(({ container, path }) =>
    (container.env ?? [])
      .filter((env) => credential.test(env.name) && env.value !== undefined)
      .map((env) => `${object.kind}/${object.metadata?.name} ${path} env ${env.name}`),
  );
}

/** Why `pod` does not run its sidecar natively (an init container with restartPolicy Always that the agent waits for), if it does not. */
export function nativeSidecarProblems(pod: V1PodSpec, sidecarName: string): string[] {
  const problems: string[] = [];
  const sidecar = pod.initContainers?.find((c) => c.name === sidecarName);
  if (!sidecar) return [`no init container named ${sidecarName}`];
  if (sidecar.restartPolicy !== "Always")
    problems.push(`${sidecarName}: restartPolicy must be Always (a native sidecar), not ${sidecar.restartPolicy ?? "unset"}`);
  if (!sidecar.startupProbe) problems.push(`${sidecarName}: needs a startupProbe, so the agent starts only once the sidecar is ready`);
  if (pod.containers.some((c) => c.name === sidecarName)) problems.push(`${sidecarName}: must not also be a regular container (it would keep the pod alive)`);
  if (pod.restartPolicy !== "Never" && pod.restartPolicy !== "OnFailure") problems.push(`pod restartPolicy must be Never or OnFailure for a Job`);
  const emptyDirs = new Set((pod.volumes ?? []).filter((v) => v.emptyDir).map((v) => v.name));
  const sidecarMounts = new Set((sidecar.volumeMounts ?? []).map((m) => m.name).filter((name) => emptyDirs.has(name)));
  for (const agent of pod.containers) {
    if (!(agent.volumeMounts ?? []).some((m) => sidecarMounts.has(m.name))) problems.push(`${agent.name}: shares no emptyDir volume with ${sidecarName}`);
  }
  return problems;
}
