import sharp from "sharp";

export interface ThumbnailOptions {
  /** Longest side of the thumbnail, in pixels. */
  readonly maxSide: number;
}

export interface Thumbnail {
  readonly width: number;
  readonly height: number;
}

/**
 * Writes a PNG thumbnail of `input` to `output`, keeping the aspect ratio and never enlarging. sharp
 * streams the decode, so memory follows the thumbnail's size more than the original's.
 */
export async function makeThumbnail(input: string, output: string, options: ThumbnailOptions): Promise<Thumbnail> {
  const info = await sharp(input)
    .rotate()
    .resize({ width: options.maxSide, height: options.maxSide, fit: "inside", withoutEnlargement: true })
    .png()
    .toFile(output);
  return { width: info.width, height: info.height };
}
