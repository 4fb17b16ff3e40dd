/** Every permission an RPC can require (see `required_permission` in the protos). */
export const permissions = [
  "storage:upload",
  "storage:download",
  "storage:hold",
  "stream:create",
  "stream:subscribe",
  "agent:register",
  "agent:view",
  "agent:execute_multimodal",
  "flow:view_results",
  "flow:report",
] as const;

export type Permission = (typeof permissions)[number];

/**
 * Role → permissions. The two multimodal roles are the original design's; `agent:view` is added to both
 * because a producer cannot submit, nor a consumer read, a flow without seeing its agents. The `run`
 * role is never configured by hand: it is what a run token grants a node's sidecar.
 */
export const rolePermissions: Readonly<Record<string, readonly Permission[]>> = {
  multimodal_producer: ["storage:upload", "stream:create", "agent:execute_multimodal", "agent:view"],
  multimodal_consumer: ["storage:download", "stream:subscribe", "flow:view_results", "agent:view"],
  admin: permissions.filter((p) => p !== "flow:report"),
  run: ["storage:upload", "storage:download", "storage:hold", "stream:create", "stream:subscribe", "agent:view", "flow:report"],
};

/** Roles an API key may be given (the `run` role only comes with run tokens). */
export const assignableRoles = ["multimodal_producer", "multimodal_consumer", "admin"] as const;

export function permissionsOf(roles: readonly string[]): Set<string> {
  return new Set(roles.flatMap((role) => rolePermissions[role] ?? []));
}
