import { accessSync, constants, statSync } from "node:fs";
import { delimiter, isAbsolute, join } from "node:path";

// Daemons such as clamd live in sbin directories, which are often missing from a non-root PATH.
const EXTRA_DIRS = ["/usr/local/sbin", "/usr/sbin", "/sbin"];

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * Resolves a binary the harness needs. A missing tool is an error that says how to install it,
 * never a skipped test: a green run must mean the real part was exercised.
 */
export function requireTool(name: string, installHint: string): string {
  if (isAbsolute(name)) {
    if (isExecutableFile(name)) return name;
    throw new Error(`${name} not found: ${installHint}`);
  }
  const dirs = [...(process.env.PATH ?? "").split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    if (isExecutableFile(candidate)) return candidate;
  }
  throw new Error(`${name} not found: ${installHint}`);
}
