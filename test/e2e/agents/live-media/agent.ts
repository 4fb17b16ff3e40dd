import { spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { Agent, PinType } from "../../../../sdk/index.js";
import { wavHeader } from "../../../../services/shared/wav.js";
import { pcmTone } from "./pcm.js";

const pcmFormat = { sampleRate: 16_000, channels: 1 } as const;

// A producer that takes `seconds` of wall-clock time per stream, so a test can tell live delivery
// (first chunk seen before `finished_at_ms`) from delivery after the fact.
const agent = Agent.connect();
await agent.process(async (_inputs, agent) => {
  const params = await agent.params();
  const seconds = typeof params.seconds === "number" ? params.seconds : 4;
  const tenths = seconds * 10;

  async function* tokens(): AsyncGenerator<string> {
    for (let n = 1; n <= tenths; n++) {
      yield `token ${String(n).padStart(2, "0")} `;
      await sleep(100);
    }
  }

  async function* audio(): AsyncGenerator<Uint8Array> {
    // Sizes unknown (0xFFFFFFFF) until the stream ends, as any live WAV producer must send them.
    yield wavHeader(pcmFormat);
    for (let n = 0; n < tenths; n++) {
      yield pcmTone(pcmFormat, 440, n * 0.1, 0.1);
      await sleep(100);
    }
  }

  /** What ffmpeg writes to stdout while it encodes in real time (-re paces it at the source's rate). */
  async function* encoded(args: readonly string[]): AsyncGenerator<Uint8Array> {
    const ffmpeg = spawn("ffmpeg", ["-hide_banner", "-loglevel", "error", "-re", ...args, "pipe:1"], { stdio: ["ignore", "pipe", "inherit"] });
    const exited = new Promise<number | null>((resolve) => ffmpeg.once("close", resolve));
    for await (const chunk of ffmpeg.stdout) yield chunk as Buffer;
    const code = await exited;
    if (code !== 0) throw new Error(`ffmpeg exited with ${code}`);
  }

  // empty_moov + frag_keyframe with a 10-frame GOP make each 0.4 s fragment playable on arrival.
  const video = encoded([
    "-f",
    "lavfi",
    "-i",
    `testsrc=size=320x240:rate=25:duration=${seconds}`,
    "-c:v",
    "libx264",
    "-profile:v",
    "baseline",
    "-level",
    "3.0",
    "-pix_fmt",
    "yuv420p",
    "-g",
    "10",
    "-tune",
    "zerolatency",
    "-movflags",
    "frag_keyframe+empty_moov+default_base_moof",
    "-f",
    "mp4",
  ]);
  // WebM is written cluster by cluster; 200 ms clusters keep the first one close to the start.
  const opus = encoded([
    "-f",
    "lavfi",
    "-i",
    `sine=frequency=660:duration=${seconds}`,
    "-c:a",
    "libopus",
    "-b:a",
    "48k",
    "-cluster_time_limit",
    "200",
    "-f",
    "webm",
  ]);

  await Promise.all([
    agent.streamOutput("text", tokens(), { mimeType: "text/plain", payloadType: PinType.TEXT }),
    agent.streamOutput("audio", audio(), { mimeType: "audio/wav", payloadType: PinType.AUDIO }),
    agent.streamOutput("video", video, { mimeType: "video/mp4", payloadType: PinType.VIDEO }),
    agent.streamOutput("opus", opus, { mimeType: "audio/webm", payloadType: PinType.AUDIO }),
  ]);
  return { finished: { finished_at_ms: Date.now() } };
});
