import type { V1Pod } from "@kubernetes/client-node";
import type { InjectionDecision } from "./injection.js";

// AdmissionReview v1 (admission.k8s.io/v1), as far as a mutating webhook reads and answers it.

const apiVersion = "admission.k8s.io/v1";

/** The part of a review's request the webhook acts on. */
export interface AdmissionRequest {
  readonly uid: string;
  readonly kind: { readonly group: string; readonly version: string; readonly kind: string };
  readonly operation: string;
  readonly object: unknown;
  readonly dryRun: boolean;
}

export interface AdmissionReviewResponse {
  readonly apiVersion: typeof apiVersion;
  readonly kind: "AdmissionReview";
  readonly response: {
    readonly uid: string;
    readonly allowed: boolean;
    readonly patchType?: "JSONPatch";
    readonly patch?: string;
    readonly status?: { readonly code: number; readonly message: string };
    readonly warnings?: readonly string[];
  };
}

/** A review the API server could have sent, or why this body is not one (the caller answers 400 with it). */
export function parseAdmissionReview(body: string): { readonly request: AdmissionRequest } | { readonly problem: string } {
  let review: unknown;
  try {
    review = JSON.parse(body);
  } catch (err) {
    return { problem: `the body is not JSON (${err instanceof Error ? err.message : String(err)})` };
  }
  if (!isRecord(review)) return { problem: "the body must be a JSON object: an AdmissionReview" };
  if (review.apiVersion !== apiVersion || review.kind !== "AdmissionReview") {
    return {
      problem: `expected apiVersion ${apiVersion} and kind AdmissionReview, got ${JSON.stringify(review.apiVersion)} ${JSON.stringify(review.kind)} (list only v1 in admissionReviewVersions)`,
    };
  }
  const request = review.request;
  if (!isRecord(request)) return { problem: "the AdmissionReview has no request" };
  if (typeof request.uid !== "string" || request.uid === "") return { problem: "request.uid must be a non-empty string" };
  const kind = request.kind;
  if (!isRecord(kind) || typeof kind.group !== "string" || typeof kind.version !== "string" || typeof kind.kind !== "string") {
    return { problem: "request.kind must be {group, version, kind} strings" };
  }
  if (typeof request.operation !== "string") return { problem: "request.operation must be a string" };
  if (request.dryRun !== undefined && typeof request.dryRun !== "boolean") return { problem: "request.dryRun must be a boolean" };
  if (request.operation === "CREATE" && !isRecord(request.object)) return { problem: "request.object must be the object being created" };
  return {
    request: {
      uid: request.uid,
      kind: { group: kind.group, version: kind.version, kind: kind.kind },
      operation: request.operation,
      object: request.object,
      dryRun: request.dryRun === true,
    },
  };
}

/** The pod a request creates, or why the webhook has nothing to do with this request. */
export function podBeingCreated(request: AdmissionRequest): { readonly pod: V1Pod } | { readonly ignored: string } {
  const { group, version, kind } = request.kind;
  if (group !== "" || version !== "v1" || kind !== "Pod")
    return { ignored: `only core/v1 Pods are injected, not ${group || "core"}/${version} ${kind}: check the webhook's rules` };
  if (request.operation !== "CREATE") return { ignored: `only CREATE is injected, not ${request.operation}` };
  const pod = request.object as V1Pod;
  if (!isRecord(pod.spec) || !Array.isArray(pod.spec.containers)) return { ignored: "the object has no spec.containers" };
  return { pod };
}

/** The answer to a review: allowed with or without a patch, or refused with a message. */
export function admissionResponse(uid: string, decision: InjectionDecision | { readonly kind: "ignored"; readonly why: string }): AdmissionReviewResponse {
  const base = { apiVersion, kind: "AdmissionReview" } as const;
  switch (decision.kind) {
    case "patch":
      return { ...base, response: { uid, allowed: true, patchType: "JSONPatch", patch: Buffer.from(JSON.stringify(decision.patch)).toString("base64") } };
    case "denied":
      return { ...base, response: { uid, allowed: false, status: { code: 403, message: decision.message } } };
    case "ignored":
      return { ...base, response: { uid, allowed: true, warnings: [`mentatlab sidecar injector: ${decision.why}`] } };
    case "unchanged":
      return { ...base, response: { uid, allowed: true } };
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
