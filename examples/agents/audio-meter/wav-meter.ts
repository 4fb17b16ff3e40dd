/** What the meter measured. */
export interface WavLevels {
  readonly sampleRate: number;
  readonly channels: number;
  readonly durationSeconds: number;
  /** RMS level in dB relative to full scale; null for silence. */
  readonly rmsDbfs: number | null;
  readonly peakDbfs: number | null;
  /** Stream chunks and bytes consumed. */
  readonly chunks: number;
  readonly bytes: number;
}

const headerLimit = 64 * 1024;

/**
 * Measures 16-bit PCM WAV as it arrives, chunk by chunk: the header is read once enough bytes are in
 * (even when it spans chunks), then samples are folded into running sums. Memory stays at one chunk.
 */
export class WavLevelMeter {
  private header = new Uint8Array(0);
  private format: { sampleRate: number; channels: number } | undefined;
  private carry: number | undefined;
  private sumOfSquares = 0;
  private peak = 0;
  private samples = 0;
  private chunks = 0;
  private bytes = 0;

  push(chunk: Uint8Array): void {
    this.chunks++;
    this.bytes += chunk.length;
    if (this.format) {
      this.fold(chunk);
      return;
    }
    const joined = new Uint8Array(this.header.length + chunk.length);
    joined.set(this.header);
    joined.set(chunk, this.header.length);
    const parsed = parseHeader(joined);
    if (!parsed) {
      if (joined.length > headerLimit) throw new Error(`no WAV data chunk in the first ${headerLimit} bytes`);
      this.header = joined;
      return;
    }
    this.format = parsed;
    this.header = new Uint8Array(0);
    this.fold(joined.subarray(parsed.dataOffset));
  }

  summary(): WavLevels {
    const rate = this.format?.sampleRate ?? 0;
    const channels = this.format?.channels ?? 0;
    const rms = this.samples > 0 ? Math.sqrt(this.sumOfSquares / this.samples) : 0;
    return {
      sampleRate: rate,
      channels,
      durationSeconds: rate > 0 && channels > 0 ? this.samples / channels / rate : 0,
      rmsDbfs: dbfs(rms),
      peakDbfs: dbfs(this.peak),
      chunks: this.chunks,
      bytes: this.bytes,
    };
  }

  private fold(data: Uint8Array): void {
    let offset = 0;
    if (this.carry !== undefined && data.length > 0) {
      this.sample((((data[0]! << 8) | this.carry) << 16) >> 16);
      this.carry = undefined;
      offset = 1;
    }
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    for (; offset + 1 < data.length; offset += 2) this.sample(view.getInt16(offset, true));
    if (offset < data.length) this.carry = data[offset];
  }

  private sample(value: number): void {
    const level = value / 32768;
    this.sumOfSquares += level * level;
    this.peak = Math.max(this.peak, Math.abs(level));
    this.samples++;
  }
}

/** Finds the `fmt ` and `data` chunks; undefined until the bytes up to the data chunk are there. */
function parseHeader(bytes: Uint8Array): { sampleRate: number; channels: number; dataOffset: number } | undefined {
  if (bytes.length < 12) return undefined;
  const text = (at: number) => String.fromCharCode(...bytes.subarray(at, at + 4));
  if (text(0) !== "RIFF" || text(8) !== "WAVE") throw new Error("the stream is not a RIFF/WAVE file");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let format: { sampleRate: number; channels: number } | undefined;
  for (let at = 12; at + 8 <= bytes.length;) {
    const id = text(at);
    if (id === "data") {
      if (!format) throw new Error("the WAV data chunk comes before its fmt chunk");
      return { ...format, dataOffset: at + 8 };
    }
    const size = view.getUint32(at + 4, true);
    if (id === "fmt ") {
      if (at + 8 + 16 > bytes.length) return undefined;
      const bitsPerSample = view.getUint16(at + 8 + 14, true);
      if (view.getUint16(at + 8, true) !== 1 || bitsPerSample !== 16) throw new Error("only 16-bit PCM WAV can be metered");
      format = { channels: view.getUint16(at + 8 + 2, true), sampleRate: view.getUint32(at + 8 + 4, true) };
    }
    at += 8 + size + (size % 2);
  }
  return undefined;
}

function dbfs(amplitude: number): number | null {
  return amplitude > 0 ? Number((20 * Math.log10(amplitude)).toFixed(2)) : null;
}
