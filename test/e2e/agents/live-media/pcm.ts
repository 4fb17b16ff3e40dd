import type { PcmFormat } from "../../../../services/shared/wav.js";

/** `seconds` of a sine tone starting at `startSeconds`, as 16-bit little-endian PCM, phase-continuous across calls. */
export function pcmTone(format: PcmFormat, hz: number, startSeconds: number, seconds: number): Uint8Array {
  const frames = Math.round(format.sampleRate * seconds);
  const first = Math.round(format.sampleRate * startSeconds);
  const out = new DataView(new ArrayBuffer(frames * format.channels * 2));
  for (let i = 0; i < frames; i++) {
    const sample = Math.round(8000 * Math.sin((2 * Math.PI * hz * (first + i)) / format.sampleRate));
    for (let c = 0; c < format.channels; c++) out.setInt16((i * format.channels + c) * 2, sample, true);
  }
  return new Uint8Array(out.buffer);
}
