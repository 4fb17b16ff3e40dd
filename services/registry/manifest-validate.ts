import { valid as validSemver } from "semver";
import { BackpressurePolicy, type MediaConstraints, PinType, type Violation } from "../../gen/mentatlab/v1/common_pb.js";
import { type AgentManifest, Capability, type Pin, ResourceProfile } from "../../gen/mentatlab/v1/registry_pb.js";
import { isMediaPin, pinTypeName } from "../../agent-contract/pins.js";
import { parseQuantity } from "./quantity.js";
import { Violations } from "./violations.js";

const reverseDns = /^[a-z][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)+$/;
const pinName = /^[a-z][a-z0-9_]{0,62}$/;
const envName = /^[A-Za-z_][A-Za-z0-9_]*$/;
const mimeType = /^[a-z0-9][a-z0-9!#$&^_.+-]*\/(\*|[a-z0-9][a-z0-9!#$&^_.+-]*)$/;
/** Variables the executor sets for every agent; a manifest must not override them. */
export const reservedEnvNames: ReadonlySet<string> = new Set(["INPUT_SPEC", "INPUT_CONTEXT", "MENTATLAB_RUN_TOKEN"]);

/** Upper bounds that catch unit mistakes (milliseconds for seconds, bits for bytes) rather than real limits. */
const saneLimits = {
  maxSizeBytes: 5n * 2n ** 40n,
  dimension: 65_535,
  durationSeconds: 7 * 24 * 3600,
  minSampleRate: 8_000,
  maxSampleRate: 384_000,
  channels: 64,
} as const;

/**
 * Checks the rules a stored manifest must meet and returns every violation. Runs on structured
 * manifests and on those parsed from text alike.
 */
export function validateManifest(manifest: AgentManifest): Violation[] {
  const v = new Violations();
  if (!reverseDns.test(manifest.id)) {
    v.add(
      "id",
      "manifest.id_reverse_dns",
      manifest.id ? `"${manifest.id}" is not a reverse-DNS id` : "id is missing",
      "use lower-case dotted segments such as org.example.image.resize",
    );
  }
  if (!validSemver(manifest.version)) {
    v.add(
      "version",
      "manifest.version_semver",
      manifest.version ? `"${manifest.version}" is not a semantic version` : "version is missing",
      "use MAJOR.MINOR.PATCH such as 1.0.0",
    );
  }
  if (!manifest.image && manifest.command.length === 0) {
    v.add(
      "command",
      "manifest.runnable",
      "neither an image nor a command is given, so the agent cannot run",
      "set image (Kubernetes runs) and/or command (local runs)",
    );
  }
  checkPins(manifest.inputs, "inputs", v);
  checkPins(manifest.outputs, "outputs", v);
  checkResources(manifest, v);
  checkWarmPool(manifest, v);
  manifest.outputs.forEach((pin, i) => {
    if (pin.type === PinType.STREAM && !manifest.capabilities.includes(Capability.STREAMING)) {
      v.add(
        `outputs[${i}].type`,
        "capability.streaming_required",
        `output "${pin.name}" is a stream but the agent lacks the streaming capability`,
        "add streaming to capabilities or change the pin type",
      );
    }
  });
  for (const name of Object.keys(manifest.env)) {
    if (!envName.test(name))
      v.add(
        `env.${name}`,
        "manifest.env_name",
        `"${name}" is not a valid environment variable name`,
        "use letters, digits and underscores, not starting with a digit",
      );
    else if (reservedEnvNames.has(name)) v.add(`env.${name}`, "manifest.env_reserved", `${name} is set by the executor`, "rename the variable");
  }
  return v.list;
}

function checkPins(pins: readonly Pin[], side: "inputs" | "outputs", v: Violations): void {
  const seen = new Set<string>();
  pins.forEach((pin, i) => {
    const path = `${side}[${i}]`;
    if (!pinName.test(pin.name)) {
      v.add(
        `${path}.name`,
        "pin.name",
        pin.name ? `"${pin.name}" is not a valid pin name` : "pin name is missing",
        "use lower-case letters, digits and underscores, starting with a letter",
      );
    } else if (seen.has(pin.name)) {
      v.add(`${path}.name`, "pin.name_unique", `pin "${pin.name}" is declared twice in ${side}`, "give every pin a distinct name");
    }
    seen.add(pin.name);
    if (pin.type === PinType.UNSPECIFIED || !(pin.type in PinType)) {
      v.add(`${path}.type`, "pin.type_known", "pin type is missing or unknown", "use text, json, binary, image, audio, video or stream");
      return;
    }
    if (pin.backpressure !== BackpressurePolicy.UNSPECIFIED && (side !== "outputs" || pin.type !== PinType.STREAM)) {
      v.add(
        `${path}.backpressure`,
        "pin.backpressure_stream_output",
        `${side === "outputs" ? pinTypeName(pin.type) : "input"} pin "${pin.name}" is not a stream output, so it has no backpressure`,
        "declare backpressure on a stream output pin, or on the flow's stream edge",
      );
    }
    if (side === "outputs" && pin.required) {
      v.add(`${path}.required`, "pin.required_output", "only inputs can be required", "remove required from the output pin");
    }
    if (isMediaPin(pin.type)) {
      if (!pin.media || pin.media.acceptedMimeTypes.length === 0) {
        v.add(
          `${path}.media`,
          "pin.media_metadata_required",
          `${pinTypeName(pin.type)} pin "${pin.name}" must declare its accepted MIME types and limits`,
          `add media: {accepted_mime_types: [${pinTypeName(pin.type)}/...], max_size_bytes: ...}`,
        );
      }
      if (pin.media) checkConstraints(pin.media, pin.type, `${path}.media`, v);
    } else if (pin.media && pin.type !== PinType.BINARY && pin.type !== PinType.STREAM) {
      v.add(
        `${path}.media`,
        "pin.media_not_applicable",
        `${pinTypeName(pin.type)} pins carry no media, so media limits do not apply`,
        "remove media or change the pin type",
      );
    } else if (pin.media) {
      checkConstraints(pin.media, pin.type, `${path}.media`, v);
    }
  });
}

function checkConstraints(media: MediaConstraints, type: PinType, path: string, v: Violations): void {
  const kind = pinTypeName(type);
  media.acceptedMimeTypes.forEach((mime, i) => {
    if (!mimeType.test(mime)) {
      v.add(`${path}.accepted_mime_types[${i}]`, "media.mime_type", `"${mime}" is not a MIME type`, "write type/subtype such as image/png or image/*");
    } else if (isMediaPin(type) && !mime.startsWith(`${kind}/`)) {
      v.add(`${path}.accepted_mime_types[${i}]`, "media.mime_kind", `"${mime}" is not ${kind} but the pin is`, `use ${kind}/... types only`);
    }
  });
  if (media.maxSizeBytes > saneLimits.maxSizeBytes) {
    v.add(
      `${path}.max_size_bytes`,
      "media.size_sane",
      `${media.maxSizeBytes} bytes is larger than any storable object (5 TiB)`,
      "give the size in bytes, e.g. 104857600 for 100 MiB",
    );
  }
  const visual = type === PinType.IMAGE || type === PinType.VIDEO;
  const timed = type === PinType.AUDIO || type === PinType.VIDEO;
  for (const [field, value] of [
    ["max_width", media.maxWidth],
    ["max_height", media.maxHeight],
  ] as const) {
    if (value === 0) continue;
    if (!visual) v.add(`${path}.${field}`, "media.limit_applicable", `${kind} has no pixel dimensions`, `remove ${field}`);
    else if (value > saneLimits.dimension)
      v.add(`${path}.${field}`, "media.dimension_sane", `${value} pixels is beyond any image format's limit`, `use at most ${saneLimits.dimension}`);
  }
  if (media.maxDurationSeconds !== 0) {
    if (!timed) v.add(`${path}.max_duration_seconds`, "media.limit_applicable", `${kind} has no duration`, "remove max_duration_seconds");
    else if (media.maxDurationSeconds > saneLimits.durationSeconds)
      v.add(
        `${path}.max_duration_seconds`,
        "media.duration_sane",
        `${media.maxDurationSeconds} s is more than a week; this looks like milliseconds`,
        "give the duration in seconds",
      );
  }
  if (media.maxSampleRate !== 0) {
    if (!timed) v.add(`${path}.max_sample_rate`, "media.limit_applicable", `${kind} has no sample rate`, "remove max_sample_rate");
    else if (media.maxSampleRate < saneLimits.minSampleRate || media.maxSampleRate > saneLimits.maxSampleRate) {
      v.add(
        `${path}.max_sample_rate`,
        "media.sample_rate_sane",
        `${media.maxSampleRate} Hz is not an audio sample rate`,
        `use a rate between ${saneLimits.minSampleRate} and ${saneLimits.maxSampleRate} Hz, e.g. 48000`,
      );
    }
  }
  if (media.maxChannels !== 0) {
    if (!timed) v.add(`${path}.max_channels`, "media.limit_applicable", `${kind} has no audio channels`, "remove max_channels");
    else if (media.maxChannels > saneLimits.channels)
      v.add(`${path}.max_channels`, "media.channels_sane", `${media.maxChannels} channels is implausible`, `use at most ${saneLimits.channels}`);
  }
}

function checkResources(manifest: AgentManifest, v: Violations): void {
  if (!(manifest.resourceProfile in ResourceProfile)) {
    v.add(
      "resource_profile",
      "resources.profile_known",
      `unknown resource profile ${manifest.resourceProfile}`,
      "use text_processing, image_processing, audio_processing or video_processing",
    );
  }
  const explicit = manifest.resources;
  for (const [field, value] of [
    ["cpu", explicit?.cpu],
    ["memory", explicit?.memory],
    ["ephemeral_storage", explicit?.ephemeralStorage],
  ] as const) {
    if (value && parseQuantity(value) === undefined) {
      v.add(
        `resources.${field}`,
        "resources.quantity",
        `"${value}" is not a Kubernetes quantity`,
        field === "cpu" ? 'write CPU as cores or millicores, e.g. "2" or "500m"' : 'write bytes with a unit, e.g. "512Mi" or "4Gi"',
      );
    }
  }
  const hasGpu = manifest.resourceProfile === ResourceProfile.VIDEO_PROCESSING || (explicit?.gpu ?? 0) > 0;
  const videoPin = [...manifest.inputs, ...manifest.outputs].findIndex((pin) => pin.type === PinType.VIDEO);
  if (videoPin !== -1 && !hasGpu) {
    v.add(
      "resource_profile",
      "resources.video_requires_gpu",
      "the agent handles video but gets no GPU",
      "set resource_profile: video_processing or resources.gpu: 1",
    );
  }
  if (manifest.capabilities.includes(Capability.GPU) && !hasGpu) {
    v.add(
      "capabilities",
      "resources.gpu_capability",
      "the gpu capability is declared but no GPU is requested",
      "set resource_profile: video_processing or resources.gpu: 1",
    );
  }
}

/** Most warm workers one agent may ask for: each is a process kept running. */
const maxWarmPoolSize = 64;

function checkWarmPool(manifest: AgentManifest, v: Violations): void {
  const pool = manifest.warmPool;
  if (!pool) return;
  if (!manifest.longRunning) {
    v.add("warm_pool", "warm_pool.long_running", "warm_pool is only used for long_running agents", "set long_running: true or remove warm_pool");
  }
  if (!Number.isInteger(pool.size) || pool.size > maxWarmPoolSize) {
    v.add(
      "warm_pool.size",
      "warm_pool.size",
      `size must be a whole number from 0 to ${maxWarmPoolSize}, got ${pool.size}`,
      "write e.g. size: 2 (0 takes ORCHESTRATOR_WARM_POOL_SIZE)",
    );
  }
  if (!Number.isInteger(pool.maxAttemptsPerWorker)) {
    v.add(
      "warm_pool.max_attempts_per_worker",
      "warm_pool.max_attempts",
      `max_attempts_per_worker must be a whole number, got ${pool.maxAttemptsPerWorker}`,
      "write e.g. max_attempts_per_worker: 100 (0 takes ORCHESTRATOR_WARM_POOL_MAX_ATTEMPTS)",
    );
  }
}
