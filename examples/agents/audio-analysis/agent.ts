import { Agent } from "../../../sdk/index.js";
import { analyseAudio } from "./analyse.js";

const agent = Agent.connect();
await agent.processMedia(async (audio, agent) => {
  await agent.progress(10, "measuring with sox");
  const analysis = await analyseAudio(audio.path);
  return {
    analysis: { ...analysis },
    summary: `${analysis.durationSeconds.toFixed(2)} s at ${analysis.sampleRate} Hz, RMS ${analysis.rmsDbfs ?? "-inf"} dBFS`,
  };
}, "audio");
