import sharp from "sharp";

/** What the image-describe agent reports about a picture. */
export interface ImageDescription {
  readonly width: number;
  readonly height: number;
  readonly format: string;
  readonly channels: number;
  readonly hasAlpha: boolean;
  /** Most frequent colour, `#rrggbb` (sharp's 4096-bin histogram). */
  readonly dominantColor: string;
  /** Mean of each colour channel, 0–255. */
  readonly meanColor: string;
  /** Whether every pixel is fully opaque. */
  readonly opaque: boolean;
  /** Shannon entropy of the greyscale histogram, in bits: near 0 for flat images, up to 8 for noise. */
  readonly entropy: number;
  /** Laplacian-based sharpness estimate; larger is sharper. */
  readonly sharpness: number;
}

const hex = (value: number) => Math.round(value).toString(16).padStart(2, "0");

/** Reads dimensions and colour statistics of an image file (sharp metadata and stats). */
export async function describeImage(path: string): Promise<ImageDescription> {
  const image = sharp(path);
  const [metadata, stats] = await Promise.all([image.metadata(), image.stats()]);
  const [red, green, blue] = stats.channels;
  const mean = (channel: { readonly mean: number } | undefined) => channel?.mean ?? 0;
  const { r, g, b } = stats.dominant;
  return {
    width: metadata.width ?? 0,
    height: metadata.height ?? 0,
    format: metadata.format ?? "unknown",
    channels: metadata.channels ?? 0,
    hasAlpha: metadata.hasAlpha ?? false,
    dominantColor: `#${hex(r)}${hex(g)}${hex(b)}`,
    meanColor: `#${hex(mean(red))}${hex(mean(green ?? red))}${hex(mean(blue ?? red))}`,
    opaque: stats.isOpaque,
    entropy: Number(stats.entropy.toFixed(4)),
    sharpness: Number(stats.sharpness.toFixed(4)),
  };
}
