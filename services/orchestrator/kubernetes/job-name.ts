import { createHash } from "node:crypto";

/** Kubernetes caps names that end up in labels (a Job's name is copied into its pods' `job-name` label). */
const maxLabelLength = 63;

/**
 * The Job name of one attempt: readable (node id, attempt) and unique (a hash of run, node and
 * attempt, so sanitising or truncating never makes two attempts collide). The same attempt always
 * gets the same name, which is what lets a restarted orchestrator find its Job again.
 */
export function jobName(runId: string, nodeId: string, attempt: number): string {
  const hash = createHash("sha256").update(`${runId}\0${nodeId}\0${attempt}`).digest("hex").slice(0, 12);
  const suffix = `-a${attempt}-${hash}`;
  const node = dnsSlug(nodeId)
    .slice(0, maxLabelLength - "ml-".length - suffix.length)
    .replace(/-+$/, "");
  return `ml-${node || "node"}${suffix}`;
}

/** Lower-case letters, digits and single dashes: what a DNS-1123 label may contain. */
function dnsSlug(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
}

/** A label value carrying `text` as closely as Kubernetes allows (the exact text goes in an annotation). */
export function labelValue(text: string): string {
  return text
    .replace(/[^A-Za-z0-9._-]+/g, "-")
    .slice(0, maxLabelLength)
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, "");
}
