import { once } from "node:events";
import { createWriteStream } from "node:fs";

/**
 * Passes `chunks` on unchanged while writing each one to `path` too, with backpressure from both the
 * consumer and the disk: how an agent streams an output live and stores the whole file as well.
 * The file is complete once the iteration ends.
 */
export async function* copyToFile(chunks: AsyncIterable<Uint8Array>, path: string): AsyncGenerator<Uint8Array> {
  const copy = createWriteStream(path);
  for await (const chunk of chunks) {
    if (!copy.write(chunk)) await once(copy, "drain");
    yield chunk;
  }
  copy.end();
  await once(copy, "finish");
}
