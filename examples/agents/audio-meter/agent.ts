import { Agent } from "../../../sdk/index.js";
import { toolOutput } from "../tool-output.js";
import { WavLevelMeter } from "./wav-meter.js";

const agent = Agent.connect();
await agent.process(async (inputs, agent) => {
  const meter = new WavLevelMeter();
  const audio = inputs.audio;
  const mimeType = typeof audio === "object" && audio !== null && !Array.isArray(audio) ? String(audio.mimeType ?? "") : "";
  // Consumes the upstream agent's audio while it is still being spoken. Compressed live audio (a
  // browser's microphone: WebM/Opus) is decoded by ffmpeg as it arrives into the WAV the meter reads.
  const live = agent.followStream("audio");
  const wav = /^audio\/(x-)?wav\b/.test(mimeType)
    ? live
    : toolOutput("ffmpeg", ["-hide_banner", "-loglevel", "error", "-i", "pipe:0", "-f", "wav", "-acodec", "pcm_s16le", "pipe:1"], live);
  for await (const chunk of wav) {
    meter.push(chunk);
    const { chunks, durationSeconds } = meter.summary();
    if (chunks % 16 === 0) await agent.metric("audio_seconds_metered", durationSeconds);
  }
  return { levels: { ...meter.summary() } };
});
