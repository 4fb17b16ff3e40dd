// The CLIs need the Node major the project pins (the `node` devDependency). Run from a shell, their
// `#!/usr/bin/env node` may find an older system Node: then run again on the pinned binary.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const requiredMajor = 24;

export function ensurePinnedNode() {
  if (Number(process.versions.node.split(".")[0]) === requiredMajor) return;
  const pinned = fileURLToPath(new URL("../node_modules/node/bin/node", import.meta.url));
  if (!existsSync(pinned)) {
    console.error(`MentatLab needs Node ${requiredMajor}.x (this is ${process.version}); run \`npm ci\` first.`);
    process.exit(1);
  }
  const result = spawnSync(pinned, process.argv.slice(1), { stdio: "inherit" });
  process.exit(result.status ?? 1);
}
