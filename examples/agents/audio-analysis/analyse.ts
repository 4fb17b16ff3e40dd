import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Duration and loudness of an audio file, as sox measures them. */
export interface AudioAnalysis {
  readonly durationSeconds: number;
  readonly sampleRate: number;
  readonly channels: number;
  /** RMS amplitude, 0–1 of full scale. */
  readonly rmsAmplitude: number;
  /** Largest absolute sample, 0–1 of full scale. */
  readonly peakAmplitude: number;
  /** RMS level in dB relative to full scale; -Infinity for silence is reported as null. */
  readonly rmsDbfs: number | null;
  readonly peakDbfs: number | null;
}

/** Reads `sox --i` for the format and `sox … -n stat` for the levels (sox prints stat on stderr). */
export async function analyseAudio(path: string): Promise<AudioAnalysis> {
  const [rate, channels, stat] = await Promise.all([run("sox", ["--i", "-r", path]), run("sox", ["--i", "-c", path]), run("sox", [path, "-n", "stat"])]);
  const fields = parseSoxStat(stat.stderr);
  const rms = fields.get("RMS amplitude") ?? 0;
  const peak = Math.max(Math.abs(fields.get("Maximum amplitude") ?? 0), Math.abs(fields.get("Minimum amplitude") ?? 0));
  return {
    durationSeconds: fields.get("Length (seconds)") ?? 0,
    sampleRate: Number(rate.stdout.trim()),
    channels: Number(channels.stdout.trim()),
    rmsAmplitude: rms,
    peakAmplitude: peak,
    rmsDbfs: dbfs(rms),
    peakDbfs: dbfs(peak),
  };
}

/** `Name:   value` lines of `sox stat`, keyed by the name with its runs of spaces collapsed. */
export function parseSoxStat(text: string): Map<string, number> {
  const fields = new Map<string, number>();
  for (const line of text.split("\n")) {
    const match = /^([^:]+):\s+(-?[\d.]+(?:e[-+]?\d+)?)\s*$/i.exec(line.trim());
    if (match?.[1] && match[2]) fields.set(match[1].trim().replace(/\s+/g, " "), Number(match[2]));
  }
  return fields;
}

function dbfs(amplitude: number): number | null {
  return amplitude > 0 ? Number((20 * Math.log10(amplitude)).toFixed(2)) : null;
}
