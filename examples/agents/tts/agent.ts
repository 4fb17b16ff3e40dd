import { join } from "node:path";
import { Agent, file, PinType, rechunk } from "../../../sdk/index.js";
import { copyToFile } from "../copy-to-file.js";
import { fixWavSizes, speak } from "./speech.js";

/** The design's chunk size for audio streams. */
const audioChunkBytes = 8 * 1024;

const agent = Agent.connect();
await agent.process(async (inputs, agent) => {
  const text = typeof inputs.text === "string" ? inputs.text : "";
  if (text.trim() === "") throw new Error("input text is empty: give the text to speak");
  const params = await agent.params();
  const voice = typeof params.voice === "string" ? params.voice : "en";
  const wordsPerMinute = typeof params.words_per_minute === "number" ? params.words_per_minute : 160;
  const path = join(await agent.workDir(), "speech.wav");
  // Each chunk goes live on the stream pin and into the stored copy, with backpressure from both.
  const live = copyToFile(rechunk(speak(text, { voice, wordsPerMinute }), audioChunkBytes), path);
  const { chunksRelayed } = await agent.streamOutput("audio", live, { mimeType: "audio/wav", payloadType: PinType.AUDIO });
  await agent.metric("audio_chunks", Number(chunksRelayed));
  await fixWavSizes(path);
  return { speech: file(path, "audio/wav") };
});
