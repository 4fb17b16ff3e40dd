import { builtinModules } from "node:module";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

/** What a program loads when it runs: its own files, and the npm packages they import. */
export interface ImportClosure {
  /** Repository-relative paths of every source file reached. */
  readonly files: readonly string[];
  /** Package names imported (`@scope/name` or `name`), builtins excluded. */
  readonly packages: readonly string[];
}

// Value imports and re-exports with a string specifier; `import type` / `export type` vanish at run time.
const importPattern = /(?:^|[\s;])(?:import|export)\s+(?!type\s)(?:[^'"]*?\sfrom\s+)?["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;
const builtins = new Set(builtinModules);

function packageName(specifier: string): string {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : (parts[0] ?? specifier);
}

/** The source file a relative specifier names: `./x.js` is written for `./x.ts`. */
function resolveRelative(from: string, specifier: string): string | undefined {
  const target = resolve(dirname(from), specifier);
  const candidates = [target, target.replace(/\.js$/, ".ts"), target.replace(/\.mjs$/, ".mts"), `${target}.ts`, join(target, "index.ts")];
  return candidates.find((candidate) => existsSync(candidate) && !candidate.endsWith("/"));
}

/** Follows value imports from `entries` through the repository rooted at `root`. */
export function importClosure(root: string, entries: readonly string[]): ImportClosure {
  const seen = new Set<string>();
  const packages = new Set<string>();
  const pending = entries.map((entry) => resolve(root, entry));
  for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
    if (seen.has(file)) continue;
    seen.add(file);
    const source = readFileSync(file, "utf8");
    for (const match of source.matchAll(importPattern)) {
      const specifier = match[1] ?? match[2];
      if (specifier === undefined) continue;
      if (specifier.startsWith(".")) {
        const target = resolveRelative(file, specifier);
        if (target === undefined) throw new Error(`${relative(root, file)}: cannot resolve ${specifier}`);
        pending.push(target);
      } else if (!specifier.startsWith("node:") && !builtins.has(specifier)) {
        packages.add(packageName(specifier));
      }
    }
  }
  return { files: [...seen].map((file) => relative(root, file)).sort(), packages: [...packages].sort() };
}
