// Plain-contract agent: spins the CPU for `params.ms` of wall time and reports the share of a core it
// got, the cgroup it ran in (the `cpu` line of /proc/self/cgroup) and that cgroup's scheduler weight.
import { readFileSync } from "node:fs";
import { readInput } from "./read-input.mjs";

const input = await readInput();
const wallMs = Number(input.spec?.params?.ms ?? 1000);
const start = performance.now();
const before = process.cpuUsage();
while (performance.now() - start < wallMs) Math.sqrt(Math.random());
const used = process.cpuUsage(before);
const share = (used.user + used.system) / 1000 / (performance.now() - start);
const line =
  readFileSync("/proc/self/cgroup", "utf8")
    .split("\n")
    .find((l) => /^\d+:([^:]*,)?cpu(,[^:]*)?:/.test(l) || l.startsWith("0::")) ?? "";
const cgroup = line.replace(/^[^:]*:[^:]*:/, "");
const weightFile = line.startsWith("0::") ? `/sys/fs/cgroup${cgroup}/cpu.weight` : `/sys/fs/cgroup/cpu${cgroup}/cpu.shares`;
let weight = 0;
try {
  weight = Number(readFileSync(weightFile, "utf8"));
} catch {
  // not readable here: reported as 0
}
process.stdout.write(`${JSON.stringify({ result: { usage: { share, cgroup, weight } } })}\n`);
