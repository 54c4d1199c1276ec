// Opens the API's /docs in headless Chromium as a deployed stage serves it (https://api.example/prod/ap/v1/agent/docs):
// each request to that stage is answered by the dev server with the stage's prefix taken off, any other request is
// refused and reported (a CDN would be one). Then Swagger UI's "Try it out" on GET /ap/v1/agent/tasks, as a user
// clicks it. Prints {requestUrl, status, outside} as JSON.
// Usage: LIVE=http://127.0.0.1:8000 CHROMIUM=/usr/bin/chromium JS_PACKAGE=clients/js/package.json node docs_browser.mjs
import { createRequire } from "node:module";

const { chromium } = createRequire(process.env.JS_PACKAGE)("playwright-core"); // the JS client's dev dependency
const stage = "https://api.example/prod";
const outside = [];
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM, args: ["--no-sandbox"] });
try {
  const page = await browser.newPage();
  await page.route("**/*", async (route) => {
    const url = route.request().url();
    if (!url.startsWith(`${stage}/`)) {
      outside.push(url);
      return route.abort();
    }
    return route.fulfill({ response: await route.fetch({ url: process.env.LIVE + url.slice(stage.length) }) });
  });
  await page.goto(`${stage}/ap/v1/agent/docs`);
  const operation = page.locator(".opblock-get").filter({ has: page.locator('[data-path="/ap/v1/agent/tasks"]') });
  await operation.locator(".opblock-summary").first().click({ timeout: 60_000 });
  await operation.locator(".try-out__btn").click();
  await operation.locator(".execute").click();
  const status = operation.locator(".live-responses-table tbody .response-col_status").first();
  await status.waitFor({ timeout: 60_000 });
  const requestUrl = await operation.locator(".request-url pre").first().innerText();
  console.log(JSON.stringify({ requestUrl: requestUrl.trim(), status: (await status.innerText()).trim(), outside }));
} finally {
  await browser.close();
}
