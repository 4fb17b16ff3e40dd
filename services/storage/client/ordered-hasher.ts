/** The bytes being uploaded: a file on disk for the CLI, a `File` in the browser. */
export interface UploadSource {
  readonly size: number;
  /** Exactly `length` bytes starting at `offset`. */
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** An incremental SHA-256: node:crypto's in the CLI, a pure-TypeScript one in browsers (no streaming hash in crypto.subtle). */
export interface IncrementalSha256 {
  update(data: Uint8Array): unknown;
  /** Lower-case hex. */
  digest(): string;
}

/** How much of the source one catch-up read takes, so catching up never holds more than this. */
const catchUpReadBytes = 1024 * 1024;

/**
 * Hashes a source's bytes once each, in order, although a resumed upload re-sends some ranges and
 * skips others: bytes already hashed are ignored, and a range the server had before this upload
 * began (or committed while a reply was lost) is read again from the source.
 */
export class OrderedHasher {
  private hashed = 0;

  constructor(
    private readonly source: UploadSource,
    private readonly hash: IncrementalSha256,
  ) {}

  /** Hashes the part of `data` (the bytes at `offset`) not hashed yet. */
  async feed(offset: number, data: Uint8Array): Promise<void> {
    await this.feedUpTo(offset);
    const end = offset + data.byteLength;
    if (end > this.hashed) {
      this.hash.update(data.subarray(this.hashed - offset));
      this.hashed = end;
    }
  }

  /** Hashes every byte before `offset`, reading from the source what was not fed. */
  async feedUpTo(offset: number): Promise<void> {
    while (this.hashed < offset) {
      const data = await this.source.read(this.hashed, Math.min(catchUpReadBytes, offset - this.hashed));
      this.hash.update(data);
      this.hashed += data.byteLength;
    }
  }

  digest(): string {
    return this.hash.digest();
  }
}
