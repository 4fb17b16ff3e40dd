import { join } from "node:path";
import { Agent, file } from "../../../sdk/index.js";
import { makeThumbnail } from "./thumbnail.js";

const agent = Agent.connect();
await agent.processMedia(async (image, agent) => {
  const params = await agent.params();
  const maxSide = typeof params.max_side === "number" ? params.max_side : 128;
  await agent.progress(10, `resizing ${image.path}`);
  const output = join(await agent.workDir(), "thumbnail.png");
  const size = await makeThumbnail(image.path, output, { maxSide });
  await agent.progress(90, `thumbnail is ${size.width}x${size.height}`);
  return { thumbnail: file(output, "image/png") };
}, "image");
