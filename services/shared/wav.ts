/**
 * The RIFF/WAVE layout of 16-bit PCM, shared by what writes a live WAV (whose length is unknown when
 * its header is sent), what plays one as it arrives (the web UI) and what saves one (mentatctl, which
 * rewrites the sizes once the stream has ended). Plain DataView code, so the browser bundle can use it.
 */

export interface PcmFormat {
  readonly sampleRate: number;
  readonly channels: number;
}

export interface WavLayout extends PcmFormat {
  /** 1 for integer PCM; other WAVE formats are reported so callers can refuse them by name. */
  readonly formatTag: number;
  readonly bitsPerSample: number;
  /** Offset of the first sample byte; the data chunk's size field sits in the 4 bytes before it. */
  readonly dataOffset: number;
}

/** What a producer writes in the size fields of a WAV whose length it does not know yet. */
export const UNKNOWN_WAV_SIZE = 0xffff_ffff;

const PCM = 1;
const HEADER_BYTES = 44;

/** A 44-byte header for 16-bit PCM; without `dataBytes` both sizes say "unknown". */
export function wavHeader(format: PcmFormat, dataBytes = UNKNOWN_WAV_SIZE): Uint8Array<ArrayBuffer> {
  const header = new Uint8Array(HEADER_BYTES);
  const view = new DataView(header.buffer);
  const blockAlign = format.channels * 2;
  writeTag(header, 0, "RIFF");
  view.setUint32(4, dataBytes === UNKNOWN_WAV_SIZE ? UNKNOWN_WAV_SIZE : 36 + dataBytes, true);
  writeTag(header, 8, "WAVE");
  writeTag(header, 12, "fmt ");
  view.setUint32(16, 16, true);
  view.setUint16(20, PCM, true);
  view.setUint16(22, format.channels, true);
  view.setUint32(24, format.sampleRate, true);
  view.setUint32(28, format.sampleRate * blockAlign, true);
  view.setUint16(32, blockAlign, true);
  view.setUint16(34, 16, true);
  writeTag(header, 36, "data");
  view.setUint32(40, dataBytes, true);
  return header;
}

/**
 * The layout of a WAV from its first bytes: undefined while the data chunk has not begun yet (read
 * more and ask again); an Error when the bytes are not RIFF/WAVE at all.
 */
export function parseWavHeader(bytes: Uint8Array): WavLayout | undefined | Error {
  if (bytes.byteLength < 12) return undefined;
  if (readTag(bytes, 0) !== "RIFF" || readTag(bytes, 8) !== "WAVE") return new Error("not a RIFF/WAVE file");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let format: Omit<WavLayout, "dataOffset"> | undefined;
  // Chunks follow one another from byte 12, each padded to an even length; `data` comes last in a live WAV.
  for (let offset = 12; offset + 8 <= bytes.byteLength;) {
    const tag = readTag(bytes, offset);
    const size = view.getUint32(offset + 4, true);
    if (tag === "data") {
      if (!format) return new Error("the data chunk comes before the fmt chunk");
      return { ...format, dataOffset: offset + 8 };
    }
    if (tag === "fmt ") {
      if (offset + 24 > bytes.byteLength) return undefined;
      format = {
        formatTag: view.getUint16(offset + 8, true),
        channels: view.getUint16(offset + 10, true),
        sampleRate: view.getUint32(offset + 12, true),
        bitsPerSample: view.getUint16(offset + 22, true),
      };
    }
    offset += 8 + size + (size % 2);
  }
  return undefined;
}

/** The RIFF and data sizes a complete file of `fileBytes` with this layout must carry. */
export function wavSizes(layout: WavLayout, fileBytes: number): { riff: number; data: number } {
  return { riff: Math.min(fileBytes - 8, UNKNOWN_WAV_SIZE), data: Math.min(fileBytes - layout.dataOffset, UNKNOWN_WAV_SIZE) };
}

/** True for the only WAVE encoding the live player and the size fix-up handle: 16-bit integer PCM. */
export function isPcm16(layout: WavLayout): boolean {
  return layout.formatTag === PCM && layout.bitsPerSample === 16;
}

function writeTag(bytes: Uint8Array, offset: number, tag: string): void {
  for (let i = 0; i < 4; i++) bytes[offset + i] = tag.charCodeAt(i);
}

function readTag(bytes: Uint8Array, offset: number): string {
  return String.fromCharCode(...bytes.subarray(offset, offset + 4));
}
