import { Agent } from "../../../sdk/index.js";
import { describeImage } from "./describe.js";

const agent = Agent.connect();
await agent.processMedia(async (image) => {
  const description = await describeImage(image.path);
  return {
    description: { ...description },
    summary: `${description.width}x${description.height} ${description.format}, mostly ${description.dominantColor}`,
  };
}, "image");
