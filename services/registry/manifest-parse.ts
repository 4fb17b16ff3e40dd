import { create, type JsonValue } from "@bufbuild/protobuf";
import { type MediaConstraints, MediaConstraintsSchema, PinType } from "../../gen/mentatlab/v1/common_pb.js";
import {
  type AgentManifest,
  AgentManifestSchema,
  type Capability,
  type Pin,
  PinSchema,
  ResourceProfile,
  type Resources,
  ResourcesSchema,
  type WarmPool,
  WarmPoolSchema,
} from "../../gen/mentatlab/v1/registry_pb.js";
import { isRecord } from "../../agent-contract/json-record.js";
import { readDocumentRecord, RecordReader } from "./document-reader.js";
import { pinTypeNames } from "../../agent-contract/pins.js";
import { capabilityNames, knownNames, readBackpressure, resourceProfileNames } from "./names.js";
import { parseQuantity } from "./quantity.js";
import { Violations } from "./violations.js";

export interface ParsedManifest {
  /** The manifest as far as it could be read; undefined when the text is not a mapping at all. */
  readonly manifest: AgentManifest | undefined;
  /** Problems reading it (syntax, wrong field types, unknown names); semantic rules come later. */
  readonly violations: Violations;
}

/**
 * Reads a manifest written as YAML or JSON, in the original project's camelCase field names or in
 * ours (snake_case). Enum values are lower-case names (`image`, `video_processing`, `streaming`).
 */
export function parseManifestText(text: string): ParsedManifest {
  const violations = new Violations();
  const r = readDocumentRecord(text, violations, "manifest", "start the document with `id: org.example.agent`");
  if (!r) return { manifest: undefined, violations };
  const manifest = create(AgentManifestSchema, {
    id: r.string("id"),
    version: r.string("version"),
    image: r.string("image"),
    runtime: r.string("runtime"),
    description: r.string("description"),
    inputs: r.array("inputs").map((pin, i) => readPin(pin, `inputs[${i}]`, violations)),
    outputs: r.array("outputs").map((pin, i) => readPin(pin, `outputs[${i}]`, violations)),
    longRunning: r.boolean("long_running", "longRunning"),
    cacheable: r.boolean("cacheable"),
    resourceProfile: readProfile(r, violations),
    capabilities: readCapabilities(r.raw("capabilities"), violations),
    env: readEnv(r.raw("env"), violations),
    command: readCommand(r),
    workingDir: r.string("working_dir", "workingDir"),
  });
  const resources = r.object("resources");
  if (resources) manifest.resources = readResources(new RecordReader(resources, "resources", violations));
  const warmPool = r.object("warm_pool", "warmPool");
  if (warmPool) manifest.warmPool = readWarmPool(new RecordReader(warmPool, "warm_pool", violations));
  r.raw("registered_at", "registeredAt");
  r.rejectUnknown();
  return { manifest, violations };
}

function readPin(value: JsonValue, path: string, violations: Violations): Pin {
  if (!isRecord(value)) {
    violations.add(path, "field.type", "a pin must be a mapping", "write the pin as `- name: image\\n  type: image`");
    return create(PinSchema);
  }
  const r = new RecordReader(value, path, violations);
  const typeName = r.string("type").toLowerCase();
  const type = pinTypeNames.get(typeName);
  if (type === undefined) {
    violations.add(
      r.child("type"),
      "pin.type_known",
      typeName ? `unknown pin type "${typeName}"` : "pin type is missing",
      `use one of: ${knownNames(pinTypeNames)}`,
    );
  }
  const pin = create(PinSchema, {
    name: r.string("name"),
    type: type ?? PinType.UNSPECIFIED,
    required: r.boolean("required"),
    description: r.string("description"),
    backpressure: readBackpressure(r, violations),
  });
  const media = r.object("media", "metadata");
  if (media) pin.media = readConstraints(new RecordReader(media, r.child("media"), violations));
  r.rejectUnknown();
  return pin;
}

function readConstraints(r: RecordReader): MediaConstraints {
  const constraints = create(MediaConstraintsSchema, {
    acceptedMimeTypes: r.strings("accepted_mime_types", "acceptedMimeTypes", "mime_types", "mimeTypes", "formats"),
    maxSizeBytes: BigInt(Math.floor(readSize(r))),
    maxWidth: r.number("max_width", "maxWidth"),
    maxHeight: r.number("max_height", "maxHeight"),
    maxDurationSeconds: r.number("max_duration_seconds", "maxDurationSeconds", "max_duration", "maxDuration"),
    maxSampleRate: r.number("max_sample_rate", "maxSampleRate", "sample_rate", "sampleRate"),
    maxChannels: r.number("max_channels", "maxChannels", "channels"),
  });
  r.rejectUnknown();
  return constraints;
}

/** Sizes may be plain byte counts or quantities such as `10Mi`. */
function readSize(r: RecordReader): number {
  const aliases = ["maxSizeBytes", "max_size", "maxSize"];
  const raw = r.raw("max_size_bytes", ...aliases);
  if (typeof raw === "string") {
    const bytes = parseQuantity(raw);
    if (bytes !== undefined) return bytes;
  }
  return r.number("max_size_bytes", ...aliases);
}

function readProfile(r: RecordReader, violations: Violations): ResourceProfile {
  const name = r.string("resource_profile", "resourceProfile").toLowerCase();
  if (!name) return ResourceProfile.UNSPECIFIED;
  const profile = resourceProfileNames.get(name);
  if (profile === undefined) {
    violations.add("resource_profile", "resources.profile_known", `unknown resource profile "${name}"`, `use one of: ${knownNames(resourceProfileNames)}`);
    return ResourceProfile.UNSPECIFIED;
  }
  return profile;
}

function readResources(r: RecordReader): Resources {
  const resources = create(ResourcesSchema, {
    cpu: r.string("cpu"),
    memory: r.string("memory"),
    ephemeralStorage: r.string("ephemeral_storage", "ephemeralStorage", "ephemeral"),
    gpu: r.number("gpu"),
  });
  r.rejectUnknown();
  return resources;
}

function readWarmPool(r: RecordReader): WarmPool {
  const warmPool = create(WarmPoolSchema, {
    size: r.number("size"),
    maxAttemptsPerWorker: r.number("max_attempts_per_worker", "maxAttemptsPerWorker"),
  });
  r.rejectUnknown();
  return warmPool;
}

/** A list of names, or the original project's mapping of name → boolean. */
function readCapabilities(value: JsonValue | undefined, violations: Violations): Capability[] {
  let names: [string, string][] = [];
  if (Array.isArray(value)) {
    names = value.map((item, i) => [typeof item === "string" ? item.toLowerCase() : JSON.stringify(item), `capabilities[${i}]`]);
  } else if (isRecord(value)) {
    names = Object.entries(value)
      .filter(([, enabled]) => enabled === true)
      .map(([name]) => [name.toLowerCase(), `capabilities.${name}`]);
  } else if (value !== undefined && value !== null) {
    violations.add("capabilities", "field.type", "must be a list of capability names", `write e.g. capabilities: [streaming, progress]`);
  }
  const capabilities: Capability[] = [];
  for (const [name, path] of names) {
    const capability = capabilityNames.get(name);
    if (capability === undefined)
      violations.add(path, "capability.known", `unknown capability ${JSON.stringify(name)}`, `use one of: ${knownNames(capabilityNames)}`);
    else if (!capabilities.includes(capability)) capabilities.push(capability);
  }
  return capabilities;
}

/** A mapping of name → value, or a Kubernetes-style list of {name, value}. */
function readEnv(value: JsonValue | undefined, violations: Violations): Record<string, string> {
  const env: Record<string, string> = {};
  const entries: [string, JsonValue, string][] = Array.isArray(value)
    ? value.map((item, i) => (isRecord(item) ? [String(item["name"] ?? ""), item["value"] ?? "", `env[${i}]`] : ["", item, `env[${i}]`]))
    : isRecord(value)
      ? Object.entries(value).map(([k, v]) => [k, v, `env.${k}`])
      : [];
  if (value !== undefined && value !== null && !Array.isArray(value) && !isRecord(value)) {
    violations.add("env", "field.type", "must be a mapping of variable names to values", "write env as NAME: value pairs");
  }
  for (const [name, v, path] of entries) {
    if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") env[name] = String(v);
    else violations.add(path, "field.type", "an environment value must be a string", `quote the value of ${name || "the variable"}`);
  }
  return env;
}

/** A list of arguments; a string is split on whitespace (no shell quoting: use a list for arguments with spaces). */
function readCommand(r: RecordReader): string[] {
  const raw = r.raw("command");
  if (typeof raw === "string") return raw.trim().split(/\s+/).filter(Boolean);
  return r.strings("command");
}
