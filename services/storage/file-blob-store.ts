import { randomUUID } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { BlobInfo, BlobStore, ByteRange, ByteSource, PresignedPut } from "./blob-store.js";

const TMP_DIR = ".incoming";

/** Blobs as files under one directory; writes land in a temp file and are renamed into place. */
export class FileBlobStore implements BlobStore {
  readonly kind = "file";

  constructor(private readonly root: string) {}

  private pathOf(key: string): string {
    const segments = key.split("/");
    if (key.length === 0 || segments.some((s) => s === "" || s === "." || s === ".." || s === TMP_DIR)) {
      throw new Error(`invalid blob key ${JSON.stringify(key)}`);
    }
    return join(this.root, ...segments);
  }

  async write(key: string, body: ByteSource): Promise<number> {
    const target = this.pathOf(key);
    const tmp = join(this.root, TMP_DIR, randomUUID());
    await mkdir(dirname(tmp), { recursive: true });
    let written = 0;
    const counted = async function* (): AsyncGenerator<Uint8Array> {
      for await (const chunk of body) {
        written += chunk.byteLength;
        yield chunk;
      }
    };
    try {
      await pipeline(Readable.from(counted(), { highWaterMark: 1 }), createWriteStream(tmp, { flags: "wx" }));
      await mkdir(dirname(target), { recursive: true });
      await rename(tmp, target);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    return written;
  }

  async read(key: string, range?: ByteRange): Promise<ByteSource | undefined> {
    // Opening first turns a missing file into `undefined` instead of a stream that errors later.
    const handle = await open(this.pathOf(key), "r").catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return undefined;
      throw err;
    });
    if (!handle) return undefined;
    const start = range?.offset ?? 0;
    if (range?.length === 0) {
      await handle.close();
      return [];
    }
    const end = range?.length === undefined ? undefined : start + range.length - 1;
    // 1 MiB reads, which Download slices into chunk-sized views without copying: a quarter of the CPU
    // per megabyte went to 64 KiB reads' syscalls and thread-pool round trips. Memory stays bounded by
    // the stream's high-water mark and the connection's flow-control window.
    return createReadStream("", { fd: handle, start, end, highWaterMark: 1024 * 1024 });
  }

  async stat(key: string): Promise<BlobInfo | undefined> {
    try {
      const info = await stat(this.pathOf(key));
      return info.isFile() ? { key, size: info.size, lastModified: info.mtime } : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }

  async *list(prefix: string): AsyncIterable<BlobInfo> {
    // List the deepest directory the prefix names, then filter the rest of the prefix by name.
    const slash = prefix.lastIndexOf("/");
    const dir = slash === -1 ? this.root : this.pathOf(prefix.slice(0, slash));
    let entries;
    try {
      entries = await readdir(dir, { recursive: true, withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
    for (const entry of entries) {
      if (!entry.isFile()) continue;
      const full = join(entry.parentPath, entry.name);
      const key = relative(this.root, full).split(sep).join("/");
      if (!key.startsWith(prefix) || key.startsWith(`${TMP_DIR}/`)) continue;
      const info = await this.stat(key);
      if (info) yield info;
    }
  }

  async probeLocation(key: string): Promise<string> {
    return this.pathOf(key);
  }

  async presignPut(): Promise<PresignedPut | undefined> {
    return undefined;
  }

  async close(): Promise<void> {}
}
