// Builds dist/: index.html (revalidated by its servers) and assets/ with content-hashed names (cached for a year).
// The JS client is bundled from its TypeScript source (../clients/js/src), so the console needs no other build.
// Fails if the bundle is over 150 KB gzipped.
import { build } from "esbuild";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
const LIMIT = 150 * 1024;
await rm(dist, { recursive: true, force: true });
await mkdir(join(dist, "assets"), { recursive: true });
const result = await build({
  entryPoints: { app: join(here, "src/main.ts") },
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  sourcemap: "linked",
  outdir: join(dist, "assets"),
  entryNames: "[name]-[hash]",
  assetNames: "[name]-[hash]",
  alias: { "@autogpt/client": join(here, "../clients/js/src/index.ts") },
  metafile: true,
  legalComments: "none",
  logLevel: "warning",
});
const outputs = Object.keys(result.metafile.outputs).map((p) => join(here, p.startsWith("/") ? p.slice(here.length) : p));
const js = outputs.find((p) => p.endsWith(".js"));
const css = outputs.find((p) => p.endsWith(".css"));
const html = (await readFile(join(here, "src/index.html"), "utf8"))
  .replace("%JS%", `./assets/${basename(js)}`)
  .replace("%CSS%", `./assets/${basename(css)}`);
await writeFile(join(dist, "index.html"), html);
let total = gzipSync(html).length;
for (const file of [js, css]) total += gzipSync(await readFile(file)).length;
console.log(`console: dist/index.html, assets/${basename(js)}, assets/${basename(css)}: ${(total / 1024).toFixed(1)} KB gzipped`);
if (total > LIMIT) {
  console.error(`the console's bundle is ${total} bytes gzipped, over the ${LIMIT} allowed`);
  process.exit(1);
}
