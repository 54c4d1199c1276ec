// Serves clients/js on a port of its own (another origin than the API's) and runs test/browser/index.html in
// headless Chromium (playwright-core, the system's chromium). Prints the page's result as JSON; exits 1 if it failed.
// Usage: AUTOGPT_BASE_URL=http://127.0.0.1:8000 CHROMIUM=/usr/bin/chromium node test/browser/run.mjs
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = fileURLToPath(new URL("../../", import.meta.url));
const types = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".map": "application/json" };
const server = createServer(async (request, response) => {
  const path = normalize(join(root, decodeURIComponent(new URL(request.url, "http://x").pathname)));
  try {
    if (!path.startsWith(root)) throw new Error("outside");
    const body = await readFile(path);
    response.writeHead(200, { "Content-Type": types[extname(path)] ?? "application/octet-stream" }).end(body);
  } catch {
    response.writeHead(404).end();
  }
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const pageURL = `http://127.0.0.1:${server.address().port}/test/browser/index.html`;
const api = process.env.AUTOGPT_BASE_URL ?? "http://localhost:8000";
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox"] });
try {
  const page = await browser.newPage();
  const problems = [];
  page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
  await page.goto(`${pageURL}?api=${encodeURIComponent(api)}`);
  await page.waitForFunction(() => window.__result !== undefined, null, { timeout: 90_000 });
  const result = await page.evaluate(() => window.__result);
  console.log(JSON.stringify({ ...result, console: problems }));
  process.exitCode = result.ok ? 0 : 1;
} finally {
  await browser.close();
  server.close();
}
