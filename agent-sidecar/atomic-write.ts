import { rename, writeFile } from "node:fs/promises";

/**
 * Writes a file whole or not at all (temp name, then rename): the bridge's files are polled by the
 * other container, or read by a restarted sidecar, which must never see one half-written.
 */
export async function writeAtomically(path: string, text: string): Promise<void> {
  await writeFile(`${path}.tmp`, text);
  await rename(`${path}.tmp`, path);
}
