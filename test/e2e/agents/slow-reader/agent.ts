import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Agent } from "../../../../sdk/index.js";

// Reads a live stream slowly: `delay_ms` after each chunk. Reports what it got and, every MiB, when.
const agent = Agent.connect();
await agent.process(async (_inputs, agent) => {
  const params = await agent.params();
  const delayMs = typeof params.delay_ms === "number" ? params.delay_ms : 10;
  const hash = createHash("sha256");
  const timeline: [number, number][] = [];
  let bytes = 0;
  for await (const chunk of agent.followStream("bytes")) {
    hash.update(chunk);
    bytes += chunk.byteLength;
    if (bytes % (1024 * 1024) < chunk.byteLength) timeline.push([Date.now(), bytes]);
    await sleep(delayMs);
  }
  return { received: { bytes, sha256: hash.digest("hex"), timeline } };
});
