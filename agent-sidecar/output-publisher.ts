import { randomUUID } from "node:crypto";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { create, fromJson, type JsonValue } from "@bufbuild/protobuf";
import { timestampNow, ValueSchema, type Value } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { AgentEventSchema, PinType, PinValueSchema, type MediaConstraints, type MediaRef, type PinValue } from "../gen/mentatlab/v1/common_pb.js";
import { isMediaPin } from "../agent-contract/pins.js";
import type { NodeEventReporter } from "./event-reporter.js";
import type { GatewayClients } from "./gateway-clients.js";
import { pathUnder } from "./media-paths.js";
import type { Backoff } from "./retry.js";
import { uploadFile } from "./upload.js";

/** The ways an agent can hand over an output. */
export type OutputKind = "text" | "json" | "bytes" | "file" | "stream";

const accepted: Readonly<Partial<Record<PinType, readonly OutputKind[]>>> = {
  [PinType.TEXT]: ["text"],
  [PinType.JSON]: ["json"],
  [PinType.BINARY]: ["bytes", "file"],
  [PinType.IMAGE]: ["file", "bytes"],
  [PinType.AUDIO]: ["file", "bytes"],
  [PinType.VIDEO]: ["file", "bytes"],
  [PinType.STREAM]: ["stream"],
};

export interface OutputPublisherOptions {
  readonly sharedDir: string;
  /** Declared output pin types; unknown pins are treated by the kind of value given. */
  readonly outputPins: ReadonlyMap<string, PinType>;
  /** Declared media constraints by pin; storage refuses, before storing it, an upload that breaks them. */
  readonly outputConstraints: ReadonlyMap<string, MediaConstraints>;
  readonly inlineMaxBytes: number;
  readonly uploadAttempts: number;
  readonly backoff: Backoff;
}

/**
 * Turns what an agent produced into PinValues: files and large bytes are uploaded to storage and become
 * MediaRefs, text and JSON pass inline. Each value is reported to the orchestrator as an OutputEvent.
 */
export class OutputPublisher {
  private readonly values = new Map<string, PinValue>();

  constructor(
    private readonly storage: GatewayClients["storage"],
    private readonly reporter: NodeEventReporter,
    private readonly options: OutputPublisherOptions,
  ) {}

  /** Outputs published so far, by pin. */
  get outputs(): ReadonlyMap<string, PinValue> {
    return this.values;
  }

  async putText(pin: string, text: string): Promise<PinValue> {
    this.check(pin, "text");
    return this.publish(pin, create(PinValueSchema, { value: { case: "text", value: text } }));
  }

  async putJson(pin: string, json: Value | JsonValue): Promise<PinValue> {
    this.check(pin, "json");
    const value = isValueMessage(json) ? json : fromJson(ValueSchema, json);
    return this.publish(pin, create(PinValueSchema, { value: { case: "json", value } }));
  }

  /** Small bytes: inline for binary pins under the threshold, otherwise stored. */
  async putBytes(pin: string, bytes: Uint8Array, mimeType: string): Promise<PinValue> {
    this.check(pin, "bytes");
    if (!isMediaPin(this.options.outputPins.get(pin)) && bytes.length <= this.options.inlineMaxBytes) {
      return this.publish(pin, create(PinValueSchema, { value: { case: "inlineBytes", value: bytes } }));
    }
    const path = join(this.options.sharedDir, "outputs", `.bytes-${randomUUID()}`);
    await mkdir(join(this.options.sharedDir, "outputs"), { recursive: true });
    await writeFile(path, bytes);
    try {
      return await this.putFile(pin, path, mimeType, pin);
    } finally {
      await rm(path, { force: true });
    }
  }

  /** A file on the shared volume, uploaded as a stream; `filename` overrides the name shown for it. */
  async putFile(pin: string, path: string, mimeType: string, filename?: string): Promise<PinValue> {
    this.check(pin, "file");
    const local = await pathUnder(this.options.sharedDir, path);
    const constraints = this.options.outputConstraints.get(pin);
    let ref: MediaRef;
    try {
      ref = await uploadFile(this.storage, local, {
        filename,
        mimeType,
        constraints,
        attempts: this.options.uploadAttempts,
        backoff: this.options.backoff,
      });
    } catch (error) {
      // Storage judges the constraints it was handed without knowing whose they are: name the pin.
      if (constraints && error instanceof ConnectError && error.code === Code.InvalidArgument) {
        throw new ConnectError(`output pin "${pin}" refused by storage: ${error.rawMessage}`, error.code);
      }
      throw error;
    }
    return this.publish(pin, create(PinValueSchema, { value: { case: "media", value: ref } }));
  }

  /**
   * Refuses, before any byte is stored, a value for a pin the agent does not declare or of a kind the
   * pin cannot carry. Without declared pins (no manifest known) everything is let through.
   */
  check(pin: string, kind: OutputKind): void {
    const pins = this.options.outputPins;
    if (pins.size === 0) return;
    const type = pins.get(pin);
    if (type === undefined) {
      throw new ConnectError(`"${pin}" is not an output pin of this agent; its outputs are ${[...pins.keys()].join(", ")}`, Code.InvalidArgument);
    }
    if (!accepted[type]?.includes(kind)) {
      throw new ConnectError(
        `output pin "${pin}" is ${PinType[type].toLowerCase()} and cannot take ${kind}; send ${accepted[type]?.join(" or ")}`,
        Code.InvalidArgument,
      );
    }
  }

  /** Records a value (e.g. a StreamRef) and reports it. */
  async publish(pin: string, value: PinValue): Promise<PinValue> {
    this.values.set(pin, value);
    await this.reporter.report(create(AgentEventSchema, { time: timestampNow(), event: { case: "output", value: { pin, value } } }));
    return value;
  }
}

function isValueMessage(json: Value | JsonValue): json is Value {
  return typeof json === "object" && json !== null && "$typeName" in json;
}
