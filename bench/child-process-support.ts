// The servers of a benchmark run in a child process and its client in the parent, so each side has a
// core of its own as in a deployment. The parent can also ask the child how much CPU it has used:
// server CPU per call or per megabyte stays meaningful when the rest of the machine is busy, unlike
// wall-clock rates.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";

const marker = "bench-child: ";

export interface BenchChild<E> {
  /** What the child's servers listen on. */
  readonly endpoints: E;
  /** CPU time (user + system) the child has used so far, in microseconds. */
  cpuMicros(): Promise<number>;
  /** Ends the child (it stops its servers) and waits for it to exit. */
  stop(): Promise<void>;
}

/**
 * Starts `script <mode>` in a child process and reads the endpoints it announces. BENCH_CHILD_NODE_ARGS
 * adds flags to the child's node (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile the servers),
 * which NODE_OPTIONS does not accept.
 */
export async function startBenchChild<E>(script: string, env: NodeJS.ProcessEnv = process.env, mode = "serve"): Promise<BenchChild<E>> {
  const nodeArgs = (process.env.BENCH_CHILD_NODE_ARGS ?? "").split(" ").filter((arg) => arg !== "");
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, "--import", "tsx", script, mode], { stdio: ["pipe", "pipe", "inherit"], env });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  // The servers log to stdout too (start-up notices): only lines with the marker are the child's answers.
  const next = async (): Promise<string> => {
    for (;;) {
      const line = await lines.next();
      if (line.done) throw new Error(`benchmark child ${script} exited early`);
      if (line.value.startsWith(marker)) return line.value.slice(marker.length);
      process.stderr.write(`${line.value}\n`);
    }
  };
  const endpoints = JSON.parse(await next()) as E;
  return {
    endpoints,
    async cpuMicros() {
      child.stdin!.write("cpu\n");
      return Number(await next());
    },
    async stop() {
      child.stdin!.end();
      if (child.exitCode === null) await once(child, "exit");
    },
  };
}

/** In the child: announces `endpoints`, answers CPU queries, and resolves once the parent lets go. */
export async function serveBenchChild(endpoints: unknown): Promise<void> {
  process.stdout.write(`${marker}${JSON.stringify(endpoints)}\n`);
  const input = createInterface({ input: process.stdin });
  input.on("line", () => {
    const used = process.cpuUsage();
    process.stdout.write(`${marker}${used.user + used.system}\n`);
  });
  await once(input, "close");
}
