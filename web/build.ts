import { copyFile, mkdir } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

const webDir = dirname(fileURLToPath(import.meta.url));

/** Where the built UI goes by default; the embedded server serves this folder at `/`. */
export const defaultWebDist = join(webDir, "dist");

/**
 * Bundles the web UI into `outDir`: `app.js` (one ES module with its sourcemap), `index.html`,
 * `style.css` and `favicon.ico`. Returns the folder, ready to be served as static files.
 */
export async function buildWeb(outDir: string = defaultWebDist): Promise<string> {
  const out = resolve(outDir);
  await mkdir(out, { recursive: true });
  await build({
    entryPoints: [join(webDir, "src", "app.ts")],
    outfile: join(out, "app.js"),
    bundle: true,
    format: "esm",
    platform: "browser",
    target: ["es2022"],
    minify: true,
    sourcemap: true,
    legalComments: "none",
    loader: { ".yaml": "text" },
    logLevel: "warning",
  });
  await Promise.all(["index.html", "style.css", "favicon.ico"].map((file) => copyFile(join(webDir, file), join(out, file))));
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const out = await buildWeb(process.argv[2]);
  console.log(`web UI built into ${out}`);
}
