import { create } from "@bufbuild/protobuf";
import { rcompare, valid as validSemver } from "semver";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { Violation } from "../../gen/mentatlab/v1/common_pb.js";
import { type AgentManifest, AgentRegistryService, type ManifestSource, ValidateManifestResponseSchema } from "../../gen/mentatlab/v1/registry_pb.js";
import { AgentCatalog, isResolveFailure, sortVersions } from "./agent-catalog.js";
import { agentKey, type AgentStore } from "./agent-store.js";
import { parseManifestText } from "./manifest-parse.js";
import { validateManifest } from "./manifest-validate.js";
import { decodePageToken, encodePageToken, pageSizeOf } from "./page-token.js";
import { violationsError } from "./violations.js";

interface CheckedManifest {
  readonly manifest: AgentManifest | undefined;
  readonly violations: Violation[];
}

/** Parses (when given as text) and validates a manifest; every violation of both steps together. */
export function checkManifest(source: ManifestSource | undefined): CheckedManifest {
  switch (source?.source.case) {
    case "manifest":
      return { manifest: source.source.value, violations: validateManifest(source.source.value) };
    case "text": {
      const parsed = parseManifestText(source.source.value);
      if (!parsed.manifest) return { manifest: undefined, violations: parsed.violations.list };
      return { manifest: parsed.manifest, violations: [...parsed.violations.list, ...validateManifest(parsed.manifest)] };
    }
    default:
      throw new ConnectError("source is required: give a manifest or its YAML/JSON text", Code.InvalidArgument);
  }
}

/**
 * AgentRegistryService. Manifests are global, not per workspace: agents are deployed software that
 * every workspace's flows may use, like container images in a registry.
 *
 * A rejected RegisterAgent carries a `ValidateManifestResponse` in its error details (valid = false,
 * every violation, and the manifest as parsed), so clients get the same structure as from
 * ValidateManifest.
 */
function firstAfter(ordered: AgentManifest[], after: string): number {
  const at = after.lastIndexOf("@");
  const [id, version] = [after.slice(0, at), after.slice(at + 1)];
  if (at < 1 || !validSemver(version)) throw new ConnectError("page_token is damaged; pass next_page_token unchanged", Code.InvalidArgument);
  const index = ordered.findIndex((m) => m.id > id || (m.id === id && rcompare(m.version, version) > 0));
  return index === -1 ? ordered.length : index;
}

export function createRegistryService(store: AgentStore): ServiceImpl<typeof AgentRegistryService> {
  const catalog = new AgentCatalog(store);
  return {
    async registerAgent(req) {
      const { manifest, violations } = checkManifest(req.source);
      if (!manifest || violations.length > 0) {
        const { message, listed } = violationsError("manifest", violations, "ValidateManifest");
        throw new ConnectError(message, Code.InvalidArgument, undefined, [
          { desc: ValidateManifestResponseSchema, value: { valid: false, violations: listed, manifest } },
        ]);
      }
      const stored: AgentManifest = { ...manifest, registeredAt: timestampNow() };
      await store.put(stored);
      return { agent: stored };
    },

    async validateManifest(req) {
      const { manifest, violations } = checkManifest(req.source);
      return create(ValidateManifestResponseSchema, { valid: manifest !== undefined && violations.length === 0, violations, manifest });
    },

    async getAgent(req) {
      const found = await catalog.resolve(req.id, req.version);
      if (isResolveFailure(found)) {
        throw new ConnectError(found.message, found.reason === "bad_range" ? Code.InvalidArgument : Code.NotFound);
      }
      return { agent: found };
    },

    async listAgents(req) {
      const after = decodePageToken(req.pageToken);
      const byId = new Map<string, AgentManifest[]>();
      for (const m of await store.list(req.idPrefix)) byId.set(m.id, [...(byId.get(m.id) ?? []), m]);
      const ordered = [...byId.keys()].sort().flatMap((id) => {
        const versions = sortVersions(byId.get(id) ?? []);
        return req.allVersions ? versions : versions.slice(0, 1);
      });
      // Resume after the last item's position, not its index, so a version registered between pages shifts nothing.
      const start = after === undefined ? 0 : firstAfter(ordered, after);
      const pageSize = pageSizeOf(req.pageSize);
      const agents = ordered.slice(start, start + pageSize);
      const last = agents.at(-1);
      return { agents, nextPageToken: start + pageSize < ordered.length && last ? encodePageToken(agentKey(last)) : "" };
    },
  };
}
