import type { Interceptor } from "@connectrpc/connect";
import { configuredApiKeys, loadOrCreateDevKey, type ApiKeyEntry } from "../shared/auth/api-keys.js";
import { Authenticator } from "../shared/auth/authenticator.js";
import { authInterceptor } from "../shared/auth/interceptor.js";
import { meshConfigFromEnv, type Env, type MeshConfig } from "../shared/config.js";
import { RunTokenSigner } from "../shared/run-token.js";
import { startTracing, type Tracing } from "../shared/telemetry/index.js";
import { validationInterceptor } from "../shared/validation.js";
import { openServices } from "../server/server.js";

/** Credentials and the interceptors that enforce them, as every process of the mesh sets them up. */
export interface MeshSecurity {
  readonly config: MeshConfig;
  readonly authenticator: Authenticator;
  readonly runTokens: RunTokenSigner;
  /** Tracing, authentication and authorisation, then protovalidate: the order a request meets them at the edge. */
  readonly interceptors: Interceptor[];
  /** Spans of this process, and the interceptors its clients to peers install to carry the trace on. */
  readonly tracing: Tracing;
  /** The development admin key created because no keys were configured, if so. */
  readonly devKey: ApiKeyEntry | undefined;
}

/** `options.process` names the process in traces (`mentatlab-<process>`); the embedded mesh by default. */
export function meshSecurity(env: Env, options: { allowDevKey?: boolean; validate?: boolean; process?: string } = {}): MeshSecurity {
  const config = meshConfigFromEnv(env);
  const keys = configuredApiKeys(env);
  const devKey = keys.length === 0 && options.allowDevKey !== false ? loadOrCreateDevKey(config.dataDir) : undefined;
  const runTokens = new RunTokenSigner(config.tokenSecret);
  const authenticator = new Authenticator(devKey ? [devKey] : keys, runTokens);
  const tracing = startTracing(env, options.process ?? "embedded", process.env);
  const interceptors = [...tracing.serverInterceptors, authInterceptor(authenticator, openServices)];
  if (options.validate !== false) interceptors.push(validationInterceptor());
  return { config, authenticator, runTokens, interceptors, tracing, devKey };
}
