// Plain-contract agent: spins the CPU for `params.ms` of wall time and reports the share of a core it
// got, and the cgroup it ran in (the `cpu` line of /proc/self/cgroup).
import { readFileSync } from "node:fs";
import { readInput } from "./read-input.mjs";

const input = await readInput();
const wallMs = Number(input.spec?.params?.ms ?? 1000);
const start = performance.now();
const before = process.cpuUsage();
while (performance.now() - start < wallMs) Math.sqrt(Math.random());
const used = process.cpuUsage(before);
const share = (used.user + used.system) / 1000 / (performance.now() - start);
const cgroup =
  readFileSync("/proc/self/cgroup", "utf8")
    .split("\n")
    .find((line) => /^\d+:([^:]*,)?cpu(,[^:]*)?:/.test(line) || line.startsWith("0::")) ?? "";
process.stdout.write(`${JSON.stringify({ result: { usage: { share, cgroup: cgroup.replace(/^[^:]*:[^:]*:/, "") } } })}\n`);
