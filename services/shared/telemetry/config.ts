import { ConfigError, type Env } from "../env.js";

export interface TelemetryConfig {
  /** Whether `GET /metrics` is served (`MENTATLAB_METRICS`: `on` (default) or `off`). */
  readonly metricsEnabled: boolean;
  /** Path of the Prometheus scrape endpoint (`MENTATLAB_METRICS_PATH`, default `/metrics`). */
  readonly metricsPath: string;
}

const switches: Readonly<Record<string, boolean>> = { on: true, true: true, "1": true, off: false, false: false, "0": false };

export function telemetryConfigFromEnv(env: Env): TelemetryConfig {
  const raw = (env.MENTATLAB_METRICS ?? "on").trim().toLowerCase();
  const metricsEnabled = switches[raw];
  if (metricsEnabled === undefined) {
    throw new ConfigError("MENTATLAB_METRICS", '"on" or "off"', env.MENTATLAB_METRICS ?? "");
  }
  const metricsPath = env.MENTATLAB_METRICS_PATH ?? "/metrics";
  if (!metricsPath.startsWith("/")) {
    throw new ConfigError("MENTATLAB_METRICS_PATH", 'a path starting with "/"', metricsPath);
  }
  return { metricsEnabled, metricsPath };
}
