import { create } from "@bufbuild/protobuf";
import { BucketClass, type MediaConstraints, type MediaRef, PinType, type PinValue, PinValueSchema } from "../../gen/mentatlab/v1/common_pb.js";
import type { Pin } from "../../gen/mentatlab/v1/registry_pb.js";
import { jsonPinValue } from "../../agent-contract/pin-values.js";
import { isMediaPin, pinTypeName } from "../../agent-contract/pins.js";
import { isRetryable } from "../shared/retryable.js";
import type { MediaStore } from "./media-store.js";

/** A value that cannot be handed to the downstream pin; fails the downstream node (never retried). */
export class EdgeError extends Error {}

export interface EdgeContext {
  /** Workspace of the run: refs from any other workspace are refused. */
  readonly workspace: string;
  /** The downstream node's run token, for storage calls made on its behalf. */
  readonly runToken: string;
  /** Binary values above this many bytes are offloaded to storage. */
  readonly inlineThresholdBytes: number;
  /** Storage, to offload binary and to re-read MediaRefs; without it refs are trusted as given. */
  readonly media: MediaStore | undefined;
}

type Processor = (value: PinValue, to: Pin, ctx: EdgeContext) => Promise<PinValue>;

const offloadChunkBytes = 64 * 1024;

const text: Processor = async (value, to) => {
  if (value.value.case === "text") return value;
  throw mismatch(value, to);
};

const json: Processor = async (value, to) => {
  if (value.value.case === "json") return value;
  if (value.value.case === "text") return jsonPinValue(value.value.value);
  throw mismatch(value, to);
};

const binary: Processor = async (value, to, ctx) => {
  if (value.value.case === "media") return create(PinValueSchema, { value: { case: "media", value: await verifiedRef(value.value.value, to, ctx) } });
  if (value.value.case !== "inlineBytes") throw mismatch(value, to);
  const bytes = value.value.value;
  if (bytes.byteLength <= ctx.inlineThresholdBytes) return value;
  if (!ctx.media)
    throw new EdgeError(
      `${bytes.byteLength} bytes for ${to.name} exceed the inline threshold (${ctx.inlineThresholdBytes}) and no storage is configured to offload them`,
    );
  async function* chunks() {
    for (let offset = 0; offset < bytes.byteLength; offset += offloadChunkBytes) yield bytes.subarray(offset, offset + offloadChunkBytes);
  }
  const ref = await ctx.media.upload(
    chunks(),
    { filename: `${to.name}.bin`, mimeType: "", sizeBytes: BigInt(bytes.byteLength), bucketClass: BucketClass.TEMP },
    ctx.runToken,
  );
  return create(PinValueSchema, { value: { case: "media", value: ref } });
};

const media: Processor = async (value, to, ctx) => {
  if (value.value.case !== "media") throw mismatch(value, to);
  const ref = await verifiedRef(value.value.value, to, ctx);
  const problems = mediaViolations(ref, to);
  if (problems.length > 0) throw new EdgeError(`${pinTypeName(to.type)} ${ref.id} does not fit input "${to.name}": ${problems.join("; ")}`);
  return create(PinValueSchema, { value: { case: "media", value: ref } });
};

const stream: Processor = async (value, to, ctx) => {
  if (value.value.case !== "stream") throw mismatch(value, to);
  if (value.value.value.workspace !== ctx.workspace) throw new EdgeError(`stream ${value.value.value.streamId} for "${to.name}" belongs to another workspace`);
  return value;
};

/** One processor per destination pin type. */
const processors: ReadonlyMap<PinType, Processor> = new Map([
  [PinType.TEXT, text],
  [PinType.JSON, json],
  [PinType.BINARY, binary],
  [PinType.IMAGE, media],
  [PinType.AUDIO, media],
  [PinType.VIDEO, media],
  [PinType.STREAM, stream],
]);

/**
 * Turns a value produced upstream (or submitted) into what the downstream input pin `to` receives:
 * text and json inline; binary inline up to the threshold, else offloaded to storage as a MediaRef;
 * image/audio/video only as MediaRefs that fit the pin's MIME types and limits; streams as StreamRefs.
 */
export async function processEdge(value: PinValue, to: Pin, ctx: EdgeContext): Promise<PinValue> {
  const processor = processors.get(to.type);
  if (!processor) throw new EdgeError(`input "${to.name}" has no pin type`);
  return processor(value, to, ctx);
}

/**
 * Every way `ref` breaks the pin's declared constraints, judged on the metadata storage read from the
 * bytes. An empty accepted list admits any type of the pin's kind.
 */
export function mediaViolations(ref: MediaRef, pin: Pin): string[] {
  const limits: MediaConstraints | undefined = pin.media;
  const problems: string[] = [];
  const accepted = limits?.acceptedMimeTypes.length ? limits.acceptedMimeTypes : isMediaPin(pin.type) ? [`${pinTypeName(pin.type)}/*`] : [];
  if (accepted.length > 0 && !accepted.some((pattern) => mimeMatches(pattern, ref.mimeType))) {
    problems.push(`type ${ref.mimeType || "(unknown)"} is not one of ${accepted.join(", ")}`);
  }
  if (!limits) return problems;
  const meta = ref.metadata;
  const over = (what: string, actual: number | bigint, max: number | bigint, unit: string) => {
    if (max && actual > max) problems.push(`${what} ${actual}${unit} exceeds ${max}${unit}`);
  };
  over("size", ref.sizeBytes, limits.maxSizeBytes, " bytes");
  over("width", meta?.width ?? 0, limits.maxWidth, " px");
  over("height", meta?.height ?? 0, limits.maxHeight, " px");
  over("duration", meta?.durationSeconds ?? 0, limits.maxDurationSeconds, " s");
  over("sample rate", meta?.sampleRate ?? 0, limits.maxSampleRate, " Hz");
  over("channels", meta?.channels ?? 0, limits.maxChannels, "");
  return problems;
}

function mimeMatches(pattern: string, mime: string): boolean {
  const base = mime.split(";")[0]?.trim().toLowerCase() ?? "";
  const p = pattern.toLowerCase();
  return p.endsWith("/*") ? base.startsWith(p.slice(0, -1)) : base === p;
}

/** The ref as storage knows it (existence, workspace and true metadata), or as given when there is no storage. */
async function verifiedRef(ref: MediaRef, to: Pin, ctx: EdgeContext): Promise<MediaRef> {
  if (ref.workspace && ref.workspace !== ctx.workspace) throw new EdgeError(`media ${ref.id} for "${to.name}" belongs to another workspace`);
  if (!ctx.media) return ref;
  try {
    return await ctx.media.stat(ref.id, ctx.runToken);
  } catch (err) {
    // Storage being down is not the value's fault: let the scheduler treat it as transient.
    if (isRetryable(err)) throw err;
    throw new EdgeError(`media ${ref.id} for "${to.name}" cannot be read from storage: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function mismatch(value: PinValue, to: Pin): EdgeError {
  return new EdgeError(`input "${to.name}" takes ${pinTypeName(to.type)} but received a ${value.value.case ?? "missing"} value`);
}
