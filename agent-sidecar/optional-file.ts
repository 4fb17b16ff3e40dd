import { readFile } from "node:fs/promises";

/** A file's text, or undefined while the other container (or an earlier sidecar) has not written it. */
export async function readTextIfPresent(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}
