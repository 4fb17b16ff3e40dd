import { fromJsonString, type MessageInitShape } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { PinType, type MediaRef, type PinValueSchema, type StreamRef } from "../../gen/mentatlab/v1/common_pb.js";
import type { Flow } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import type { Pin } from "../../gen/mentatlab/v1/registry_pb.js";
import type { Api } from "./api.js";
import { el, enumWord } from "./dom.js";

export type PinValueInit = MessageInitShape<typeof PinValueSchema>;

/** An input pin of a node that no edge feeds: the user gives its value. */
export interface UnboundInput {
  readonly key: string;
  readonly pin: Pin;
}

/** The inputs of `flow` that no edge binds, read from each node's agent manifest. */
export async function unboundInputs(api: Api, flow: Flow): Promise<UnboundInput[]> {
  const bound = new Set((flow.graph?.edges ?? []).map((edge) => edge.to));
  const perNode = await Promise.all(
    (flow.graph?.nodes ?? []).map(async (node) => {
      const { agent } = await api.registry.getAgent({ id: node.agent, version: node.agentVersion });
      return (agent?.inputs ?? []).map((pin) => ({ key: `${node.id}.${pin.name}`, pin })).filter((input) => !bound.has(input.key));
    }),
  );
  return perNode.flat();
}

const mediaKinds: ReadonlyMap<PinType, string> = new Map([
  [PinType.IMAGE, "image/"],
  [PinType.AUDIO, "audio/"],
  [PinType.VIDEO, "video/"],
  [PinType.BINARY, ""],
]);

/**
 * A field for one input: a text box for text and JSON, a choice from the media library for media, a
 * choice of the workspace's open streams (a microphone being published, say) for stream pins.
 */
interface InputField {
  readonly input: UnboundInput;
  readonly element: HTMLElement;
  value(): PinValueInit | undefined;
  /** Puts `ref` in this field when its type accepts it; says whether it did. */
  offer(ref: MediaRef): boolean;
}

function fieldId(key: string): string {
  return `input-${key.replace(/[^A-Za-z0-9_-]/g, "-")}`;
}

/** A `<select>` of things (media refs, streams) for one input, each option keyed by `keyOf`. */
class Choice<T> {
  readonly select: HTMLSelectElement;
  private readonly choices: T[];

  constructor(
    id: string,
    input: UnboundInput,
    choices: readonly T[],
    private readonly keyOf: (choice: T) => string,
    private readonly describe: (choice: T) => string,
    placeholder: string,
  ) {
    this.choices = [...choices];
    this.select = el("select", { id, "data-input": input.key }, el("option", { value: "" }, placeholder));
    for (const choice of this.choices) this.select.append(this.option(choice));
    if (input.pin.required) this.select.required = true;
  }

  chosen(): T | undefined {
    return this.choices.find((choice) => this.keyOf(choice) === this.select.value);
  }

  /** Selects `choice`, adding it first when it is not offered yet. */
  choose(choice: T): void {
    if (!this.choices.some((known) => this.keyOf(known) === this.keyOf(choice))) {
      this.choices.push(choice);
      this.select.append(this.option(choice));
    }
    this.select.value = this.keyOf(choice);
  }

  private option(choice: T): HTMLOptionElement {
    return el("option", { value: this.keyOf(choice) }, this.describe(choice));
  }
}

function createField(input: UnboundInput, media: readonly MediaRef[], streams: readonly StreamRef[]): InputField {
  const id = fieldId(input.key);
  const type = enumWord(PinType, input.pin.type);
  const label = el("label", { for: id }, el("code", {}, input.key), ` (${type}${input.pin.required ? ", required" : ""})`);
  const hint = input.pin.description ? el("p", { class: "hint" }, input.pin.description) : "";
  const field = (choice: Choice<StreamRef> | Choice<MediaRef>, value: () => PinValueInit | undefined, offer: InputField["offer"]): InputField => ({
    input,
    element: el("div", { class: "input-field" }, label, choice.select, hint),
    value,
    offer,
  });
  if (input.pin.type === PinType.STREAM) {
    const choice = new Choice(
      id,
      input,
      streams,
      (ref) => ref.streamId,
      (ref) => `${ref.streamId} (${ref.mimeType})`,
      streams.length > 0 ? "choose an open stream…" : "no open stream: publish the microphone on the Streams page",
    );
    return field(
      choice,
      () => {
        const ref = choice.chosen();
        return ref ? { value: { case: "stream", value: ref } } : undefined;
      },
      () => false,
    );
  }
  const prefix = mediaKinds.get(input.pin.type);
  if (prefix !== undefined) {
    const accepted = media.filter((ref) => ref.mimeType.startsWith(prefix));
    const choice = new Choice(
      id,
      input,
      accepted,
      (ref) => ref.id,
      (ref) => `${ref.filename || ref.id} (${ref.mimeType})`,
      accepted.length > 0 ? "choose from the media library…" : "no media of this type yet: upload some on the Media page",
    );
    return field(
      choice,
      () => {
        const ref = choice.chosen();
        return ref ? { value: { case: "media", value: ref } } : undefined;
      },
      (ref) => {
        if (!ref.mimeType.startsWith(prefix)) return false;
        choice.choose(ref);
        return true;
      },
    );
  }
  const box = el("textarea", { id, rows: input.pin.type === PinType.JSON ? "4" : "2", spellcheck: "false", "data-input": input.key });
  if (input.pin.required) box.required = true;
  if (input.pin.type === PinType.JSON) box.placeholder = '{"key": "value"}';
  return {
    input,
    element: el("div", { class: "input-field" }, label, box, hint),
    value: () => {
      if (box.value === "" && !input.pin.required) return undefined;
      if (input.pin.type !== PinType.JSON) return { value: { case: "text", value: box.value } };
      try {
        return { value: { case: "json", value: fromJsonString(ValueSchema, box.value) } };
      } catch (err) {
        throw new ConnectError(`input ${input.key} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`, Code.InvalidArgument);
      }
    },
    offer: () => false,
  };
}

/** The form's fields for a flow's unbound inputs, and the pin values they hold. */
export class InputsForm {
  #fields: InputField[] = [];

  constructor(private readonly container: HTMLFieldSetElement) {}

  show(inputs: readonly UnboundInput[], media: readonly MediaRef[], note?: string, streams: readonly StreamRef[] = []): void {
    this.#fields = inputs.map((input) => createField(input, media, streams));
    const legend = el("legend", {}, "Inputs");
    const hint = el(
      "p",
      { class: "hint", id: "flow-inputs-hint" },
      note ?? (inputs.length === 0 ? "Every input of this flow is bound by an edge." : "Values for the inputs no edge feeds."),
    );
    this.container.replaceChildren(legend, hint, ...this.#fields.map((field) => field.element));
  }

  /** Places `ref` in the first field that accepts its type; returns that field's input key. */
  offer(ref: MediaRef): string | undefined {
    return this.#fields.find((field) => field.offer(ref))?.input.key;
  }

  values(): Record<string, PinValueInit> {
    const values: Record<string, PinValueInit> = {};
    for (const field of this.#fields) {
      const value = field.value();
      if (value) values[field.input.key] = value;
    }
    return values;
  }
}
