import { maxSatisfying, rcompare, validRange } from "semver";
import type { AgentManifest } from "../../gen/mentatlab/v1/registry_pb.js";
import type { AgentStore } from "./agent-store.js";

/** Why a manifest could not be resolved. */
export type ResolveFailure = { readonly reason: "unknown_agent" | "no_matching_version" | "bad_range"; readonly message: string };

/** Looks manifests up the way flows name them: an id plus an exact version, a semver range, or nothing for the newest. */
export class AgentCatalog {
  constructor(readonly store: AgentStore) {}

  async resolve(id: string, versionOrRange = ""): Promise<AgentManifest | ResolveFailure> {
    const versions = await this.store.versions(id);
    if (versions.length === 0) return { reason: "unknown_agent", message: `no agent "${id}" is registered` };
    if (versionOrRange && !validRange(versionOrRange)) {
      return { reason: "bad_range", message: `"${versionOrRange}" is neither a version nor a semver range` };
    }
    const chosen = maxSatisfying(
      versions.map((m) => m.version),
      versionOrRange || "*",
      { includePrerelease: !versionOrRange },
    );
    const manifest = versions.find((m) => m.version === chosen);
    if (!manifest) {
      return {
        reason: "no_matching_version",
        message: `agent "${id}" has no version matching "${versionOrRange}" (registered: ${sortVersions(versions)
          .map((m) => m.version)
          .join(", ")})`,
      };
    }
    return manifest;
  }
}

export function isResolveFailure(value: AgentManifest | ResolveFailure): value is ResolveFailure {
  return "reason" in value;
}

/** Newest version first. */
export function sortVersions(manifests: AgentManifest[]): AgentManifest[] {
  return [...manifests].sort((a, b) => rcompare(a.version, b.version));
}
