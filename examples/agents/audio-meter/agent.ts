import { Agent } from "../../../sdk/index.js";
import { WavLevelMeter } from "./wav-meter.js";

const agent = Agent.connect();
await agent.process(async (_inputs, agent) => {
  const meter = new WavLevelMeter();
  // Consumes the upstream agent's audio while it is still being spoken.
  for await (const chunk of agent.followStream("audio")) {
    meter.push(chunk);
    const { chunks, durationSeconds } = meter.summary();
    if (chunks % 16 === 0) await agent.metric("audio_seconds_metered", durationSeconds);
  }
  return { levels: { ...meter.summary() } };
});
