import { setTimeout as sleep } from "node:timers/promises";
import { Agent, PinType } from "../../../../sdk/index.js";
import { tick } from "./tick.js";

// A deliberately slow producer, so a test can break the network in the middle of its stream.
const agent = Agent.connect();
await agent.process(async (_inputs, agent) => {
  const params = await agent.params();
  const count = typeof params.count === "number" ? params.count : 50;
  const intervalMs = typeof params.interval_ms === "number" ? params.interval_ms : 40;
  async function* ticks(): AsyncGenerator<string> {
    for (let n = 1; n <= count; n++) {
      yield tick(n);
      await sleep(intervalMs);
    }
  }
  const { chunksRelayed } = await agent.streamOutput("ticks", ticks(), { mimeType: "text/plain", payloadType: PinType.TEXT });
  return { count: Number(chunksRelayed) };
});
