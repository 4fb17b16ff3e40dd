/**
 * The node attempt a sidecar serves and how it reaches the mesh: what an executor writes into the
 * sidecar's environment (`sidecarEnv`) and the sidecar reads back (`loadSidecarConfig`).
 */
export interface NodeAttempt {
  readonly runId: string;
  readonly nodeId: string;
  readonly attempt: number;
  /** Workspace of the run, for the plain contract's context. */
  readonly workspace: string;
  /** Agent id and version, for the plain contract's spec. */
  readonly agentId: string;
  readonly agentVersion: string;
  /** Base URL of the gateway; every service is reached through it. */
  readonly gatewayUrl: string;
  /** Run token sent as `Authorization: Bearer` to the gateway. */
  readonly runToken: string;
  /** Shared volume: inputs are downloaded here and agents write outputs here. */
  readonly sharedDir: string;
}
