import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parse } from "yaml";

/** What kustomize reads from a kustomization.yaml, as far as these checks need. */
export interface Kustomization {
  readonly kind?: string;
  readonly resources?: readonly string[];
  readonly components?: readonly string[];
  readonly patches?: readonly { readonly path?: string }[];
  readonly configMapGenerator?: readonly Generator[];
  readonly secretGenerator?: readonly Generator[];
}

interface Generator {
  readonly name: string;
  readonly files?: readonly string[];
  readonly literals?: readonly string[];
  readonly envs?: readonly string[];
}

/** Every kustomization.yaml under `root`. */
export function findKustomizations(root: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(root)) {
    const path = join(root, entry);
    if (statSync(path).isDirectory()) found.push(...findKustomizations(path));
    else if (entry === "kustomization.yaml") found.push(path);
  }
  return found.sort();
}

export function readKustomization(file: string): Kustomization {
  return parse(readFileSync(file, "utf8")) as Kustomization;
}

/** A generator `files` entry is `path` or `key=path`. */
function generatorFile(entry: string): string {
  const eq = entry.indexOf("=");
  return eq >= 0 ? entry.slice(eq + 1) : entry;
}

/** Each path the kustomization refers to, absolute, with what refers to it. */
export function referencedPaths(file: string, k: Kustomization): { path: string; field: string }[] {
  const dir = dirname(file);
  const at = (field: string) => (path: string) => ({ path: resolve(dir, path), field });
  return [
    ...(k.resources ?? []).map(at("resources")),
    ...(k.components ?? []).map(at("components")),
    ...(k.patches ?? []).flatMap((p) => (p.path ? [at("patches")(p.path)] : [])),
    ...[...(k.configMapGenerator ?? []), ...(k.secretGenerator ?? [])].flatMap((g) => [
      ...(g.files ?? []).map((f) => at(`generator ${g.name}`)(generatorFile(f))),
      ...(g.envs ?? []).map(at(`generator ${g.name}`)),
    ]),
  ];
}

/** Referenced paths that do not exist; a directory must hold a kustomization.yaml. */
export function missingPaths(file: string, k: Kustomization): string[] {
  return referencedPaths(file, k)
    .filter(({ path, field }) => {
      if (!existsSync(path)) return true;
      const needsKustomization = (field === "resources" || field === "components") && statSync(path).isDirectory();
      return needsKustomization && !existsSync(join(path, "kustomization.yaml"));
    })
    .map(({ path, field }) => `${file}: ${field} ${path}`);
}

/** Values a secretGenerator puts in Secrets: literals and file contents (comment lines dropped). */
export function generatedSecretValues(file: string, k: Kustomization): string[] {
  const dir = dirname(file);
  return (k.secretGenerator ?? []).flatMap((g) => [
    ...(g.literals ?? []).map((literal) => literal.slice(literal.indexOf("=") + 1)),
    ...(g.files ?? []).flatMap((f) =>
      readFileSync(resolve(dir, generatorFile(f)), "utf8")
        .split("\n")
        .filter((line) => line.trim() !== "" && !line.startsWith("#"))
        // A whole line is secret, and so is the key of a KEY=VALUE line (API keys files).
        .flatMap((line) => [line, line.split("=")[0] ?? line]),
    ),
  ]);
}
