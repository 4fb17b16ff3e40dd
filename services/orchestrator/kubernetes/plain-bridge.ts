/**
 * The agent container's side of the plain-contract file bridge (agent-sidecar/plain-bridge.ts is the
 * sidecar's). A pod cannot pipe one container's stdio into another, so a plain agent's stdin, stdout,
 * stderr and exit code travel as files on the shared emptyDir.
 */

/** Environment variable naming the bridge directory, set on both containers. */
export const plainBridgeEnv = "MENTATLAB_PLAIN_BRIDGE";

/** How long the agent container waits for the sidecar to deliver after the agent exited. */
export const deliveryWaitSeconds = 600;

/**
 * Waits for the spec, runs the agent (`"$@"`: the manifest's command as positional arguments, never
 * interpolated) with its stdio on the bridge files and INPUT_SPEC/INPUT_CONTEXT set as a wrapped agent
 * gets them, publishes its exit code atomically, then waits until
 * the sidecar has delivered everything (bounded, so a dead sidecar cannot hold the pod) and exits with
 * the agent's code. The sidecar is ready before this container starts (its startup probe), so the wait
 * for the spec is short. Fractional `sleep` works in coreutils and busybox.
 */
export const plainBridgeScript = [
  'b="$MENTATLAB_PLAIN_BRIDGE"',
  'while [ ! -f "$b/stdin.json" ]; do sleep 0.1; done',
  'INPUT_SPEC="$(cat "$b/spec.json")" INPUT_CONTEXT="$(cat "$b/context.json")" "$@" < "$b/stdin.json" > "$b/stdout.ndjson" 2> "$b/stderr.log"',
  "code=$?",
  'printf "%s\\n" "$code" > "$b/exit-code.tmp" && mv -f "$b/exit-code.tmp" "$b/exit-code"',
  "waited=0",
  `while [ ! -f "$b/delivered" ] && [ "$waited" -lt ${deliveryWaitSeconds * 10} ]; do sleep 0.1; waited=$((waited + 1)); done`,
  'exit "$code"',
].join("\n");

/** `$0` of the wrapper, shown by `ps` and in shell error messages. */
const scriptName = "agent";

/**
 * The agent of a manifest command. A manifest written for the local executor may wrap the agent in the
 * sidecar itself (`node --import tsx agent-sidecar/main.ts -- <agent…>`); in a pod the sidecar is its
 * own container, so only the part after `--` runs.
 */
export function agentCommandOf(command: readonly string[]): readonly string[] {
  const separator = command.indexOf("--");
  const wrapsSidecar = separator > 0 && command.slice(0, separator).some((arg) => /(^|\/)agent-sidecar(\/main\.[cm]?[jt]s)?$/.test(arg));
  return wrapsSidecar ? command.slice(separator + 1) : command;
}

/**
 * The agent container's command for a manifest `command` (the plain contract): the bridge wrapper with
 * the agent's command as positional arguments. Undefined when the manifest has no command (an SDK agent
 * run by the image's entrypoint).
 */
export function plainBridgeCommand(command: readonly string[]): string[] | undefined {
  const agent = agentCommandOf(command);
  return agent.length > 0 ? ["/bin/sh", "-c", plainBridgeScript, scriptName, ...agent] : undefined;
}
