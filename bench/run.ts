// `npm run bench`: every benchmark in its own process, one after the other, so none disturbs another's
// figures. Each prints its result as a ratio against a baseline it measured in the same run.
// `npm run bench -- stream` runs only the benchmarks whose file name contains "stream".
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

const dir = fileURLToPath(new URL(".", import.meta.url));
const filter = process.argv[2] ?? "";
const benches = readdirSync(dir)
  .filter((file) => file.endsWith(".ts") && file !== "run.ts" && !file.includes("support") && file.includes(filter))
  .sort();

let failed = 0;
for (const bench of benches) {
  console.log(`\n=== ${bench}`);
  const result = spawnSync(process.execPath, ["--import", "tsx", `${dir}${bench}`], { stdio: "inherit" });
  if (result.status !== 0) {
    failed += 1;
    console.log(`=== ${bench} exited with ${result.status ?? result.signal}`);
  }
}
process.exit(failed === 0 ? 0 : 1);
