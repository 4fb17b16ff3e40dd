// A plain-contract agent whose outputs cover every preview the run page has: it hands its image
// back, writes a short WAV tone for the executor to upload, and reports text and JSON. With
// params.hold_ms it waits first, so a test can watch it running and cancel it. Its stream
// output (notes) is opened by the orchestrator and left empty: the run page shows it ended empty.
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const { spec, context } = JSON.parse(input);
const emit = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);
const image = context.inputs.image;
const caption = String(context.inputs.caption ?? "");
emit({ type: "log", level: "info", message: `describing ${image.mimeType} of ${image.sizeBytes} bytes` });
emit({ type: "progress", data: { percent: 25, message: "looking" } });
const holdMs = Number(spec.params?.hold_ms ?? 0);
if (holdMs > 0) await new Promise((resolve) => setTimeout(resolve, holdMs));

const sampleRate = 8000;
const samples = sampleRate / 2;
const wav = Buffer.alloc(44 + samples * 2);
wav.write("RIFF", 0);
wav.writeUInt32LE(36 + samples * 2, 4);
wav.write("WAVEfmt ", 8);
wav.writeUInt32LE(16, 16);
wav.writeUInt16LE(1, 20);
wav.writeUInt16LE(1, 22);
wav.writeUInt32LE(sampleRate, 24);
wav.writeUInt32LE(sampleRate * 2, 28);
wav.writeUInt16LE(2, 32);
wav.writeUInt16LE(16, 34);
wav.write("data", 36);
wav.writeUInt32LE(samples * 2, 40);
for (let i = 0; i < samples; i++) wav.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 660 * i) / sampleRate)), 44 + i * 2);
// SHOWCASE_OUT_DIR (from the manifest's env) keeps the tone in the test's own folder, removed after it.
const tone = join(process.env.SHOWCASE_OUT_DIR ?? tmpdir(), `showcase-tone-${context.run_id}-${context.node_id}-${context.attempt}.wav`);
writeFileSync(tone, wav);

emit({ type: "progress", data: { percent: 90, message: "writing" } });
emit({
  result: {
    image,
    caption: `${caption} (described)`,
    facts: { caption_length: caption.length, mime_type: image.mimeType, width: image.metadata?.width ?? 0 },
    tone: { path: tone, mime_type: "audio/wav" },
  },
});
