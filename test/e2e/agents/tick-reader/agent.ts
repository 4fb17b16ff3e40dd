import { Agent } from "../../../../sdk/index.js";

// What the SDK hands an agent from a live stream, verbatim, so a test can look for gaps and repeats.
const agent = Agent.connect();
await agent.process(async (_inputs, agent) => {
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of agent.followStream("ticks")) text += decoder.decode(chunk, { stream: true });
  return { text };
});
