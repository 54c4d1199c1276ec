// The built package against a running server (AUTOGPT_BASE_URL, the dev server): what the spec's JS SDK shows,
// and the rest. Run by tests/client/test_js_client.py, which starts the server and builds the package.
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { test } from "node:test";

import { AutoGPTClient, AutoGPTError, fromWire, toWire } from "../dist/esm/index.js";

const baseURL = process.env.AUTOGPT_BASE_URL ?? "http://localhost:8000";
const client = new AutoGPTClient({ baseURL });

test("the spec's example: create a task, execute a step", async () => {
  const task = await client.createTask({ input: "分析销售数据", additionalInput: { priority: "high" } });
  const step = await client.executeStep(task.taskId, { input: "开始分析" });
  assert.equal(task.status, "created");
  assert.deepEqual(task.additionalInput, { priority: "high" });
  assert.equal(step.taskId, task.taskId);
  assert.equal(typeof step.isLast, "boolean");
  assert.equal(step.additionalOutput.usage.total_tokens >= 0, true); // user and server data stay as sent
});

test("files both ways, small through the API and large straight to S3", async () => {
  const task = await client.createTask({ input: "files" });
  const small = new Blob(["m,a\nJan,1\n"], { type: "text/csv" });
  const large = new Blob([new Uint8Array(4_500_000).fill(65)], { type: "text/plain" });
  const progress = [];
  const up = await client.uploadArtifact(task.taskId, small, { fileName: "sales.csv", relativePath: "data/sales.csv" });
  const big = await client.uploadArtifact(task.taskId, large, { fileName: "big.txt", onProgress: (s, t) => progress.push([s, t]) });
  const files = await client.getArtifacts(task.taskId);
  assert.equal(up.relativePath, "data/sales.csv");
  assert.equal(big.fileSize, 4_500_000);
  assert.deepEqual(progress.at(-1), [4_500_000, 4_500_000]);
  assert.deepEqual(files.map((a) => a.fileName).sort(), ["big.txt", "sales.csv"]);
  assert.equal(await (await client.downloadArtifact(task.taskId, up.artifactId)).text(), "m,a\nJan,1\n");
  assert.equal((await client.downloadArtifact(task.taskId, big.artifactId)).size, 4_500_000);
  assert.equal((await client.deleteArtifact(task.taskId, up.artifactId)).success, true);
});

test("errors carry the spec's code, message, details and status", async () => {
  await assert.rejects(client.getTask("00000000-0000-4000-8000-000000000000"), (error) => {
    assert.ok(error instanceof AutoGPTError);
    assert.equal(error.code, "TASK_NOT_FOUND");
    assert.equal(error.status, 404);
    assert.equal(error.details.task_id, "00000000-0000-4000-8000-000000000000");
    return true;
  });
  const aborted = new AbortController();
  aborted.abort();
  await assert.rejects(client.status({ signal: aborted.signal }), { name: "AbortError" });
});

test("a run to its end, watched live, and the task list page after page", async () => {
  const task = await client.createTask({ input: "Summarise" });
  const run = await client.runTask(task.taskId, { pollMs: 200 });
  const watched = await client.createTask({ input: "Summarise" });
  await client.startRun(watched.taskId);
  const updates = [];
  for await (const update of client.watchTask(watched.taskId)) updates.push(update);
  const seen = [];
  for await (const t of client.iterTasks({ size: 1 })) seen.push(t.taskId);
  assert.equal(run.status, "completed");
  assert.equal(updates.at(-1).status, "completed");
  assert.equal(updates.at(-1).progress, 1);
  assert.ok(seen.includes(task.taskId) && new Set(seen).size === seen.length);
  const status = await client.status();
  assert.equal(status.version, "0.5.1");
  assert.ok(status.capabilities.includes("code_execution"));
});

test("a rate-limited call is tried again after Retry-After, with the same Idempotency-Key", async () => {
  const keys = [];
  let calls = 0;
  const scripted = new AutoGPTClient({
    baseURL: "http://agent.test",
    fetch: async (url, init) => {
      keys.push(init.headers["Idempotency-Key"]);
      calls += 1;
      if (calls === 1) {
        const body = { success: false, error: { code: "RATE_LIMITED", message: "slow down", details: {} } };
        return new Response(JSON.stringify(body), { status: 429, headers: { "Retry-After": "0" } });
      }
      return Response.json({ task_id: "t1", input: "x", additional_input: {}, status: "created", created_at: "a", modified_at: "a", artifacts: [] });
    },
  });
  const task = await scripted.createTask({ input: "x" });
  assert.equal(task.taskId, "t1");
  assert.equal(calls, 2);
  assert.equal(keys[0], keys[1]);
});

test("camelCase here, snake_case on the wire; CommonJS too", () => {
  assert.deepEqual(fromWire({ task_id: "t", additional_input: { keep_me: 1 } }), { taskId: "t", additionalInput: { keep_me: 1 } });
  assert.deepEqual(toWire({ maxSteps: 3 }), { max_steps: 3 });
  const require = createRequire(import.meta.url);
  assert.equal(typeof require("../dist/cjs/index.js").AutoGPTClient, "function");
});

test("a GET asked again is revalidated: 304 while unchanged, the kept answer reused, a change read anew", async () => {
  const seen = [];
  const recording = new AutoGPTClient({
    baseURL,
    fetch: async (url, init) => {
      const response = await fetch(url, init);
      seen.push([init.method, new URL(url).pathname.split("/").at(-1), response.status, init.headers["If-None-Match"] ?? null]);
      return response;
    },
  });
  const task = await recording.createTask({ input: "revalidate" });
  const first = await recording.getTask(task.taskId);
  first.input = "changed by the caller";
  const second = await recording.getTask(task.taskId);
  await recording.executeStep(task.taskId, { input: "go" });
  const third = await recording.getTask(task.taskId);
  const gets = seen.filter(([method]) => method === "GET");
  assert.equal(gets[0][2], 200);
  assert.equal(gets[0][3], null);
  assert.equal(gets[1][2], 304);
  assert.match(gets[1][3], /^"[0-9a-f]+"$/);
  assert.equal(second.input, "revalidate"); // the kept answer, not what the caller did to its copy
  assert.equal(gets[2][2], 200); // the step changed the task: a new version, read in full
  assert.notEqual(third.modifiedAt, second.modifiedAt);
});
