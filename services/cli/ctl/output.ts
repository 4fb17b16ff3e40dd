import { toJson, toJsonString, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import type { OutputFormat } from "./config.js";
import { writeLine } from "./progress.js";
import { writeOut, type CliIo } from "./io.js";

/**
 * Prints what commands produce: a protobuf message as canonical JSON (`--output json`) or as the
 * human-readable text the command renders. Commentary (progress, hints) goes to stderr so that
 * stdout stays parseable.
 */
export class Printer {
  constructor(
    private readonly io: CliIo,
    readonly format: OutputFormat,
  ) {}

  /** A command's single result: pretty JSON, or the text rendering. */
  async result<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>, text: (m: MessageShape<Desc>) => string): Promise<void> {
    const out = this.format === "json" ? JSON.stringify(toJson(schema, message), null, 2) : text(message);
    await writeOut(this.io.stdout, ensureNewline(out));
  }

  /** One item of a live feed: a JSON line, or one text line. */
  async event<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>, text: (m: MessageShape<Desc>) => string): Promise<void> {
    const out = this.format === "json" ? toJsonString(schema, message) : text(message);
    await writeOut(this.io.stdout, ensureNewline(out));
  }

  /** Commentary for the person at the terminal. */
  async note(text: string): Promise<void> {
    await writeLine(this.io.stderr, text);
  }
}

function ensureNewline(text: string): string {
  return text.endsWith("\n") ? text : `${text}\n`;
}
