import { join } from "node:path";
import { Agent, file, PinType, rechunk } from "../../../sdk/index.js";
import { copyToFile } from "../copy-to-file.js";
import { extractPoster, transcodeClip } from "./transcode.js";

/** The design's chunk size for video streams. */
const videoChunkBytes = 64 * 1024;

const agent = Agent.connect();
await agent.processMedia(async (video, agent) => {
  const params = await agent.params();
  const width = typeof params.width === "number" ? params.width : 320;
  const maxSeconds = typeof params.max_seconds === "number" ? params.max_seconds : 10;
  const workDir = await agent.workDir();
  const poster = join(workDir, "poster.png");
  await extractPoster(video.path, poster, width);
  await agent.progress(20, "poster extracted, transcoding");

  const clipPath = join(workDir, "clip.mp4");
  const live = copyToFile(rechunk(transcodeClip(video.path, { width, maxSeconds }), videoChunkBytes), clipPath);
  const { chunksRelayed } = await agent.streamOutput("clip", live, { mimeType: "video/mp4", payloadType: PinType.VIDEO });
  await agent.metric("video_chunks", Number(chunksRelayed));
  return { poster: file(poster, "image/png"), video: file(clipPath, "video/mp4") };
}, "video");
