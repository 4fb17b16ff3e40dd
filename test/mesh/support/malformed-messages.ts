// Malformed request messages generated from a method's input descriptor, in both encodings.
import { ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";

/** One malformed message: what is wrong with it, and its bytes in protobuf binary or JSON. */
export interface MalformedMessage {
  readonly label: string;
  readonly encoding: "binary" | "json";
  readonly bytes: Uint8Array;
}

const HUGE_REPEATED = 20_000;
const utf8 = new TextEncoder();

/** A deterministic byte generator, so a failure names bytes that can be sent again. */
function pseudoRandom(seed: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    out[i] = state & 0xff;
  }
  return out;
}

function binary(label: string, build: (w: BinaryWriter) => void): MalformedMessage {
  const writer = new BinaryWriter();
  build(writer);
  return { label, encoding: "binary", bytes: writer.finish() };
}

function json(label: string, value: unknown): MalformedMessage {
  return { label, encoding: "json", bytes: utf8.encode(typeof value === "string" ? value : JSON.stringify(value)) };
}

/** Bodies wrong whatever the message: truncated, garbage, impossible tags. */
function generic(seed: number): MalformedMessage[] {
  return [
    { label: "binary: truncated varint", encoding: "binary", bytes: new Uint8Array([0x08, 0x80]) },
    { label: "binary: field number 0", encoding: "binary", bytes: new Uint8Array([0x00, 0x01]) },
    { label: "binary: wire type 7 (does not exist)", encoding: "binary", bytes: new Uint8Array([0x0f, 0x00]) },
    { label: "binary: length prefix past the end", encoding: "binary", bytes: new Uint8Array([0x0a, 0x7f, 0x01]) },
    { label: "binary: length prefix of 2^32", encoding: "binary", bytes: new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]) },
    { label: "binary: end group without start", encoding: "binary", bytes: new Uint8Array([0x0c]) },
    { label: "binary: 64 garbage bytes", encoding: "binary", bytes: pseudoRandom(seed, 64) },
    { label: "binary: 4 KiB garbage bytes", encoding: "binary", bytes: pseudoRandom(seed + 1, 4096) },
    json("json: not JSON", "{"),
    json("json: an array, not an object", "[]"),
    json("json: a string, not an object", '"x"'),
    json("json: a number, not an object", "42"),
    { label: "json: not UTF-8", encoding: "json", bytes: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]) },
    json("json: deeply nested", "[".repeat(5000) + "]".repeat(5000)),
  ];
}

/** A value of the field's element type that JSON parsing accepts, to repeat in huge lists. */
function validJsonElement(field: DescField): unknown {
  if (field.fieldKind === "list") {
    if (field.listKind === "message") return {};
    if (field.listKind === "enum") return field.enum.values[0]?.name ?? 0;
    return field.scalar === ScalarType.STRING ? "x" : field.scalar === ScalarType.BOOL ? true : field.scalar === ScalarType.BYTES ? "AA==" : 1;
  }
  return undefined;
}

/** Wrong JSON types, bad enum names and numbers, bad base64, huge lists: one field at a time. */
function jsonPerField(field: DescField): MalformedMessage[] {
  const name = field.jsonName;
  // Unknown JSON fields are ignored, so an object is only wrong where the field is not a message.
  const out = field.fieldKind === "message" ? [] : [json(`json: ${name} is an object of garbage`, { [name]: { "\u0000": [1] } })];
  switch (field.fieldKind) {
    case "scalar":
      out.push(json(`json: ${name} is an array`, { [name]: [1, 2] }));
      if (field.scalar === ScalarType.STRING) out.push(json(`json: ${name} is a number`, { [name]: 12345 }));
      else if (field.scalar === ScalarType.BYTES) out.push(json(`json: ${name} is not base64`, { [name]: "%%not base64%%" }));
      else if (field.scalar === ScalarType.BOOL) out.push(json(`json: ${name} is a string`, { [name]: "maybe" }));
      else {
        out.push(json(`json: ${name} is not a number`, { [name]: "twelve" }));
        out.push(json(`json: ${name} is out of range`, { [name]: "1e400" }));
        out.push(json(`json: ${name} is fractional`, { [name]: 1.5 }));
      }
      break;
    case "enum":
      out.push(json(`json: ${name} names no value`, { [name]: "NOT_A_VALUE" }));
      out.push(json(`json: ${name} is an undefined number`, { [name]: 987654 }));
      break;
    case "message":
      out.push(json(`json: ${name} is a string`, { [name]: "x" }));
      break;
    case "list":
      out.push(json(`json: ${name} is not a list`, { [name]: "x" }));
      out.push(json(`json: ${name} holds ${HUGE_REPEATED} elements`, { [name]: Array(HUGE_REPEATED).fill(validJsonElement(field)) }));
      if (field.listKind === "enum")
        out.push(json(`json: ${name} holds undefined enum numbers`, { [name]: Array.from({ length: 200 }, (_, i) => 987654 + i) }));
      break;
    case "map":
      out.push(json(`json: ${name} is a list, not a map`, { [name]: [1] }));
      break;
  }
  return out;
}

/** Wrong wire types, invalid UTF-8, undefined enum numbers, huge repeats: one field at a time. */
function binaryPerField(field: DescField): MalformedMessage[] {
  const n = field.number;
  const name = field.name;
  const out = [binary(`binary: ${name} as fixed32`, (w) => w.tag(n, WireType.Bit32).fixed32(7))];
  const lengthDelimited =
    field.fieldKind === "message" ||
    field.fieldKind === "map" ||
    ((field.fieldKind === "scalar" || (field.fieldKind === "list" && field.listKind === "scalar")) &&
      (field.scalar === ScalarType.STRING || field.scalar === ScalarType.BYTES));
  if (lengthDelimited) {
    out.push(binary(`binary: ${name} as a varint`, (w) => w.tag(n, WireType.Varint).uint64(1n)));
    out.push(binary(`binary: ${name} holding garbage`, (w) => w.tag(n, WireType.LengthDelimited).bytes(new Uint8Array([0xff, 0xff, 0xff]))));
    if (field.scalar === ScalarType.STRING) {
      out.push(binary(`binary: ${name} is invalid UTF-8`, (w) => w.tag(n, WireType.LengthDelimited).bytes(new Uint8Array([0xc3, 0x28, 0xff]))));
    }
  } else {
    out.push(binary(`binary: ${name} as length-delimited garbage`, (w) => w.tag(n, WireType.LengthDelimited).bytes(new Uint8Array([0xff, 0x01]))));
  }
  if (field.fieldKind === "enum" || (field.fieldKind === "list" && field.listKind === "enum")) {
    out.push(binary(`binary: ${name} is an undefined enum number`, (w) => w.tag(n, WireType.Varint).int32(987654)));
    if (field.fieldKind === "list") {
      out.push(
        binary(`binary: ${name} holds 200 undefined enum numbers`, (w) => {
          for (let i = 0; i < 200; i++) w.tag(n, WireType.Varint).int32(987654 + i);
        }),
      );
    }
  }
  if (field.fieldKind === "list") {
    out.push(
      binary(`binary: ${name} repeated ${HUGE_REPEATED} times`, (w) => {
        for (let i = 0; i < HUGE_REPEATED; i++) {
          if (field.listKind === "scalar" && (field.scalar === ScalarType.STRING || field.scalar === ScalarType.BYTES))
            w.tag(n, WireType.LengthDelimited).string("x");
          else if (field.listKind === "message") w.tag(n, WireType.LengthDelimited).bytes(new Uint8Array());
          else w.tag(n, WireType.Varint).int32(1);
        }
      }),
    );
  }
  return out;
}

/** Every malformed message for `input`: generic bodies plus, per field, the ways to get it wrong. */
export function malformedMessages(input: DescMessage, seed: number): MalformedMessage[] {
  const out = generic(seed);
  for (const field of input.fields) out.push(...jsonPerField(field), ...binaryPerField(field));
  if (input.oneofs.some((oneof) => oneof.fields.length > 1)) {
    const oneof = input.oneofs.find((o) => o.fields.length > 1)!;
    out.push(json(`json: two members of ${oneof.name} at once`, Object.fromEntries(oneof.fields.map((f) => [f.jsonName, validJsonElement(f) ?? {}]))));
  }
  return out;
}
