import type { JsonValue } from "@bufbuild/protobuf";

/** An output that is a file on the shared volume: the sidecar uploads it and passes on its MediaRef. */
export class FileOutput {
  constructor(
    readonly path: string,
    readonly mimeType = "",
  ) {}
}

/** An output of raw bytes: inline when small on a binary pin, stored otherwise. */
export class BytesOutput {
  constructor(
    readonly bytes: Uint8Array,
    readonly mimeType = "",
  ) {}
}

/** What an agent may return for an output pin: text, any JSON value, a file, or bytes. */
export type OutputValue = string | JsonValue | FileOutput | BytesOutput;

/** Marks a path as a file output. */
export function file(path: string, mimeType = ""): FileOutput {
  return new FileOutput(path, mimeType);
}

/** Marks bytes as a binary output. */
export function bytes(data: Uint8Array, mimeType = ""): BytesOutput {
  return new BytesOutput(data, mimeType);
}
