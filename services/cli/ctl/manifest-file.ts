import { readFile, stat } from "node:fs/promises";
import { resolve } from "node:path";
import { CliError } from "./exit-codes.js";

// The contract's limit on ManifestSource.text.
const maxManifestBytes = 1024 * 1024;

/** Reads an agent manifest (YAML or JSON) to send as text: the registry parses and validates it. */
export async function readManifestFile(cwd: string, file: string): Promise<string> {
  const path = resolve(cwd, file);
  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile()) throw new CliError(`${file} is not a readable file`);
  if (info.size > maxManifestBytes) throw new CliError(`${file} is larger than 1 MiB, the limit for a manifest`);
  return readFile(path, "utf8");
}
