import { Agent, PinType } from "../../../sdk/index.js";
import { describeImage, type ImageDescription } from "./describe.js";

const agent = Agent.connect();
await agent.processMedia(async (image, agent) => {
  let description: ImageDescription | undefined;
  // Findings go out live, one NDJSON line per aspect, before the stored results are published.
  async function* findings(): AsyncGenerator<string> {
    description = await describeImage(image.path);
    const { width, height, format, channels, hasAlpha } = description;
    yield `${JSON.stringify({ aspect: "geometry", width, height, format, channels, hasAlpha })}\n`;
    yield `${JSON.stringify({ aspect: "colour", dominant: description.dominantColor, mean: description.meanColor, opaque: description.opaque })}\n`;
    yield `${JSON.stringify({ aspect: "texture", entropy: description.entropy, sharpness: description.sharpness })}\n`;
  }
  await agent.streamOutput("findings", findings(), { mimeType: "application/json", payloadType: PinType.JSON });
  if (!description) throw new Error("the image was not described");
  return {
    description: { ...description },
    summary: `${description.width}x${description.height} ${description.format}, mostly ${description.dominantColor}`,
  };
}, "image");
