// The CLIs need the Node major the project pins (the `node` devDependency). Run from a shell, their
// `#!/usr/bin/env node` may find an older system Node: then run again on the pinned binary, as a child
// that this process only relays to (Node cannot exec in place).
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { constants } from "node:os";
import { fileURLToPath } from "node:url";

const requiredMajor = 24;
/** What a supervisor, `kill` or a terminal sends to ask for a stop; the child gets it too. */
const relayedSignals = ["SIGTERM", "SIGINT", "SIGHUP"];

/** Returns at once on the pinned Node; otherwise never resolves, and this process exits as the child does. */
export function ensurePinnedNode() {
  if (Number(process.versions.node.split(".")[0]) === requiredMajor) return Promise.resolve();
  const pinned = fileURLToPath(new URL("../node_modules/node/bin/node", import.meta.url));
  if (!existsSync(pinned)) {
    console.error(`MentatLab needs Node ${requiredMajor}.x (this is ${process.version}); run \`npm ci\` first.`);
    process.exit(1);
  }
  const child = spawn(pinned, process.argv.slice(1), { stdio: "inherit" });
  // A blocking spawnSync would leave the child running when this process is signalled: relay instead.
  for (const signal of relayedSignals) process.on(signal, () => child.kill(signal));
  child.on("error", (error) => {
    console.error(`could not start ${pinned}: ${error.message}`);
    process.exit(1);
  });
  child.on("exit", (code, signal) => process.exit(code ?? 128 + (signal ? constants.signals[signal] : 0)));
  return new Promise(() => {});
}
