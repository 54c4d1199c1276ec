// Drives the web console (/console/) in headless Chromium as a person would, by role and accessible name: creates a
// task with a file, runs it and watches it reach `completed` live, reads the timeline and a tool call, downloads
// report.md, finds the task in the list, opens an unknown task, switches to Chinese, fits a 390 px phone, runs
// axe-core; with KEYS_BASE, a dev server with AUTH=keys: the key is asked once, kept in sessionStorage, refused
// keys are said so. Every wait is bounded; nothing sleeps. Prints the results as one JSON line.
// Usage: BASE=http://127.0.0.1:PORT [KEYS_BASE=... ADMIN_KEY=...] CHROMIUM=/usr/bin/chromium SHOT=docs/console.png
//        CONSOLE_PACKAGE=console/package.json node tests/integration/console_browser.mjs
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const need = createRequire(process.env.CONSOLE_PACKAGE); // the console's pinned dev dependencies
const { chromium } = need("playwright-core");
const axeSource = readFileSync(need.resolve("axe-core/axe.min.js"), "utf8");
const base = process.env.BASE;
const R = { steps: {}, foreign: [], pageErrors: [] };
const T = { timeout: 15_000 };

async function step(name, fn) {
  try {
    R.steps[name] = { ok: true, value: (await fn()) ?? true };
  } catch (e) {
    R.steps[name] = { ok: false, error: String(e?.message ?? e).slice(0, 500) };
  }
}

async function axe(page) {
  await page.addScriptTag({ content: axeSource });
  const found = await page.evaluate(async () => await window.axe.run());
  return found.violations.filter((v) => ["critical", "serious"].includes(v.impact)).map((v) => `${v.id}: ${v.nodes.map((n) => n.target).join(" ")}`);
}

function watch(page) {
  page.on("request", (r) => {
    const u = new URL(r.url());
    if (!["127.0.0.1", "localhost"].includes(u.hostname) && !["data:", "blob:"].includes(u.protocol)) R.foreign.push(r.url());
  });
  page.on("pageerror", (e) => R.pageErrors.push(String(e).slice(0, 300)));
}

async function apiStatus(id) {
  return (await (await fetch(`${base}/ap/v1/agent/tasks/${id}`)).json()).status;
}

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM, args: ["--no-sandbox", "--disable-gpu"] });
try {
  const ctx = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 }, locale: "en-US" });
  const page = await ctx.newPage();
  watch(page);
  const input = `Summarise the sales file ${Date.now()}`;
  let id;
  await step("open", async () => {
    const r = await page.goto(`${base}/console/`, { waitUntil: "load", timeout: 30_000 });
    await page.getByRole("heading", { name: "New task" }).waitFor(T);
    return { status: r.status(), cache: r.headers()["cache-control"] };
  });
  await step("create with a file", async () => {
    await page.getByRole("textbox", { name: "Task", exact: true }).fill(input, T);
    await page.getByLabel("Files", { exact: true }).setInputFiles({ name: "sales.csv", mimeType: "text/csv", buffer: Buffer.from("month,amount\nJan,10\nFeb,32\n") });
    await page.getByRole("button", { name: "Create task", exact: true }).click(T);
    await page.getByRole("heading", { name: input }).waitFor(T);
    id = /#\/tasks\/([0-9a-f-]{36})$/.exec(page.url())?.[1];
    if (!id) throw new Error(`no task id in ${page.url()}`);
    await page.getByRole("link", { name: "sales.csv", exact: true }).waitFor(T);
    return { id, badge: await page.locator("#task-status").innerText() };
  });
  await step("run to completed, live", async () => {
    const seen = [];
    await page.exposeFunction("__saw", (s) => seen.push(s));
    await page.evaluate(() => new MutationObserver(() => window.__saw(document.getElementById("task-status").textContent)).observe(document.getElementById("task-status"), { childList: true, characterData: true, subtree: true }));
    await page.getByRole("button", { name: "Run", exact: true }).click(T);
    const end = Date.now() + 30_000;
    while (!["completed", "failed"].includes(await apiStatus(id))) {
      if (Date.now() > end) throw new Error("the run did not end in 30 s");
      await page.waitForTimeout(250); // polling the API, not a synchronisation sleep: bounded by `end`
    }
    await page.locator("#task-status", { hasText: /^completed$/ }).waitFor(T);
    await page.waitForFunction(() => document.getElementById("task-progress").value === 1, null, T);
    return { seen, url: page.url() };
  });
  await step("timeline with tool calls", async () => {
    const timeline = page.locator("ol.timeline");
    await timeline.getByText("write_file").first().waitFor(T);
    const names = await timeline.locator(".step-name").allInnerTexts();
    const call = timeline.locator("details").first();
    await call.locator("summary").click(T);
    await call.getByRole("heading", { name: "Arguments" }).waitFor(T);
    const meta = await timeline.locator(".step .meta").first().innerText();
    return { names, meta };
  });
  await step("the report downloads", async () => {
    const link = page.getByRole("link", { name: "report.md", exact: true });
    const href = await link.getAttribute("href");
    const [download] = await Promise.all([page.waitForEvent("download", T), link.click(T)]);
    const text = readFileSync(await download.path(), "utf8");
    return { name: download.suggestedFilename(), href, head: text.slice(0, 40) };
  });
  await step("live log lines", async () => {
    await page.locator("ol.logs li.log").first().waitFor(T);
    return await page.locator("ol.logs li.log").count();
  });
  await step("axe on the task page", async () => await axe(page));
  if (process.env.SHOT) {
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: process.env.SHOT, fullPage: false });
  }
  await step("the list shows the task", async () => {
    await page.getByRole("link", { name: "All tasks" }).first().click(T);
    const row = page.getByRole("link", { name: input });
    await row.waitFor(T);
    const totals = await page.locator(".totals").innerText();
    // The dev server is shared with other tests: failed tasks may exist. The filter hides ours, shows only failed.
    await page.getByLabel("Status", { exact: true }).selectOption("failed");
    await row.waitFor({ ...T, state: "detached" });
    await page.getByText("No tasks yet.").or(page.locator("ul.tasks .badge-failed").first()).waitFor(T);
    const others = await page.locator("ul.tasks .badge:not(.badge-failed)").count();
    if (others) throw new Error(`the failed filter shows ${others} tasks of another status`);
    await page.getByLabel("Status", { exact: true }).selectOption("completed");
    await row.waitFor(T);
    return { totals };
  });
  await step("create validates additional_input", async () => {
    await page.getByRole("textbox", { name: "Task", exact: true }).fill("x", T);
    await page.getByLabel("Additional input (JSON object)").fill("[1, 2]");
    await page.getByRole("button", { name: "Create task", exact: true }).click(T);
    await page.getByText(/Not a JSON object/).waitFor(T);
    return page.url().endsWith("/console/") || page.url().endsWith("#/");
  });
  await step("axe on the tasks page", async () => await axe(page));
  await step("an unknown task says not found", async () => {
    await page.goto(`${base}/console/#/tasks/00000000-0000-4000-8000-000000000000`, { timeout: 30_000 });
    await page.getByRole("heading", { name: /Task not found/ }).waitFor(T);
    return true;
  });
  await step("agent page", async () => {
    await page.goto(`${base}/console/#/agent`, { timeout: 30_000 });
    await page.getByText("Total tasks").waitFor(T);
    await page.locator(".figures dd").nth(3).filter({ hasText: /^[1-9]/ }).waitFor(T);
    return await page.locator(".figures").innerText();
  });
  await step("switch to Chinese", async () => {
    await page.goto(`${base}/console/#/tasks/${id}`, { timeout: 30_000 });
    await page.getByLabel("Language").selectOption("zh");
    await page.locator("#task-status", { hasText: /^已完成$/ }).waitFor(T);
    await page.getByRole("button", { name: "运行", exact: true }).waitFor(T);
    return await page.evaluate(() => document.documentElement.lang);
  });
  await ctx.close();

  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: "zh-CN", isMobile: true });
  const p2 = await phone.newPage();
  watch(p2);
  const overflow = () => p2.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  await step("phone, Chinese from the browser", async () => {
    await p2.goto(`${base}/console/`, { timeout: 30_000 });
    await p2.getByRole("textbox", { name: "任务", exact: true }).waitFor(T);
    await p2.getByRole("button", { name: "创建任务", exact: true }).waitFor(T);
    const home = await overflow();
    await p2.goto(`${base}/console/#/tasks/${id}`, { timeout: 30_000 });
    await p2.locator("#task-status", { hasText: /^已完成$/ }).waitFor(T);
    await p2.locator("ol.timeline li.step").first().waitFor(T);
    return { home, task: await overflow() };
  });
  await step("axe in Chinese at a phone's width", async () => await axe(p2));
  await phone.close();

  if (process.env.KEYS_BASE) {
    const keys = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "en-US" });
    const p3 = await keys.newPage();
    watch(p3);
    const field = p3.getByRole("textbox", { name: "API key", exact: true });
    await step("keys: refused, then asked once and kept for the session", async () => {
      await p3.goto(`${process.env.KEYS_BASE}/console/`, { timeout: 30_000 });
      await field.fill("agk_not_a_key", T);
      await p3.getByRole("button", { name: "Use key" }).click(T);
      await p3.getByRole("alert").filter({ hasText: "The key was refused" }).waitFor(T);
      await field.fill(process.env.ADMIN_KEY, T);
      await p3.getByRole("button", { name: "Use key" }).click(T);
      await p3.getByText("No tasks yet.").or(p3.locator("ul.tasks a").first()).waitFor(T);
      const dialogs = await p3.locator("dialog[open]").count();
      await p3.getByRole("textbox", { name: "Task", exact: true }).fill("with a key", T);
      await p3.getByRole("button", { name: "Create task", exact: true }).click(T);
      await p3.getByRole("heading", { name: "with a key" }).waitFor(T);
      await p3.getByRole("button", { name: "Run", exact: true }).click(T);
      await p3.locator("#task-status", { hasText: /^completed$/ }).waitFor({ timeout: 30_000 });
      const [download] = await Promise.all([p3.waitForEvent("download", T), p3.getByRole("link", { name: "report.md" }).click(T)]);
      const stored = await p3.evaluate(() => ({ session: sessionStorage.length, local: Object.keys(localStorage) }));
      await p3.reload();
      await p3.getByRole("heading", { name: "with a key" }).waitFor(T);
      return { dialogs, stored, download: download.suggestedFilename(), askedAfterReload: await p3.locator("dialog[open]").count() };
    });
    await keys.close();
  }
} catch (e) {
  R.fatal = String(e?.stack ?? e).slice(0, 600);
} finally {
  await browser.close();
}
console.log(JSON.stringify(R));
