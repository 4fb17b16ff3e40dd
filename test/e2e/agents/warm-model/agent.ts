import { appendFileSync, existsSync, writeFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { Agent } from "../../../../sdk/index.js";

// An agent with a slow start-up, as a real-time agent loading a model has: it "loads" for
// MODEL_LOAD_MS, then serves attempts (one, or many in a warm worker). WARM_LOG, when set, is a file
// it appends `start <pid>` and `exit <pid> <code>` to, so tests count real process starts and exits.
const log = process.env.WARM_LOG;
log && appendFileSync(log, `start ${process.pid}\n`);
process.once("exit", (code) => log && appendFileSync(log, `exit ${process.pid} ${code}\n`));
await sleep(Number(process.env.MODEL_LOAD_MS ?? 300));

const agent = Agent.connect();
await agent.process(async (inputs, agent) => {
  await agent.progress(5, "model loaded, working");
  const params = await agent.params();
  // Crashes the whole worker in the middle of the first attempt that finds no marker (and leaves one).
  if (typeof params.crash_once_marker === "string" && !existsSync(params.crash_once_marker)) {
    writeFileSync(params.crash_once_marker, String(process.pid));
    process.exit(1);
  }
  // Kills the worker (the agent-sidecar serving this agent) in the middle of the first such attempt.
  if (typeof params.kill_worker_once_marker === "string" && !existsSync(params.kill_worker_once_marker)) {
    writeFileSync(params.kill_worker_once_marker, String(process.pid));
    process.kill(process.ppid, "SIGKILL");
    await sleep(60_000);
  }
  return { text: `${String(inputs.text ?? "")} from ${process.pid}` };
});
