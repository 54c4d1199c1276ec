// The built package against a running server (AUTOGPT_BASE_URL, the dev server): what the spec's JS SDK shows,
// and the rest. Run by tests/client/test_js_client.py, which starts the server and builds the package.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { test } from "node:test";
import { WebSocketServer } from "ws";

import { AutoGPTClient, AutoGPTError, MULTIPART_LIMIT, fromWire, toWire } from "../dist/esm/index.js";

const baseURL = process.env.AUTOGPT_BASE_URL ?? "http://localhost:8000";
const client = new AutoGPTClient({ baseURL });
// Every test has a deadline: a client that waits forever fails the test instead of hanging `npm test`.
const bounded = { timeout: 60_000 };

/** A local API server that answers every request with `answer(method, path)` ([status, body, headers?]) and
 * records what it was asked ("GET /tasks/t1/run"). Closed when the test ends. */
async function scripted(t, answer) {
  const seen = [];
  const server = createServer((request, response) => {
    const path = new URL(request.url, "http://x").pathname.replace("/ap/v1/agent", "");
    seen.push(`${request.method} ${path}`);
    const [status, body, headers = {}] = answer(request.method, path);
    request.resume().on("end", () => response.writeHead(status, { "Content-Type": "application/json", ...headers }).end(JSON.stringify(body)));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => (server.closeAllConnections(), new Promise((resolve) => server.close(resolve))));
  return { baseURL: `http://127.0.0.1:${server.address().port}`, seen };
}

const envelope = (code, details = {}) => ({ success: false, message: code, error: { code, message: code, details } });
const TASK = { task_id: "t1", input: "x", additional_input: {}, status: "created", created_at: "a", modified_at: "a", artifacts: [] };
const RUNNING = { task_id: "t1", run_id: "r1", status: "running", max_steps: 20, started_at: "a" };

test("the spec's example: create a task, execute a step", bounded, async () => {
  const task = await client.createTask({ input: "分析销售数据", additionalInput: { priority: "high" } });
  const step = await client.executeStep(task.taskId, { input: "开始分析" });
  assert.equal(task.status, "created");
  assert.deepEqual(task.additionalInput, { priority: "high" });
  assert.equal(step.taskId, task.taskId);
  assert.equal(typeof step.isLast, "boolean");
  assert.equal(step.additionalOutput.usage.total_tokens >= 0, true); // user and server data stay as sent
});

test("files both ways, small through the API and large straight to S3", bounded, async () => {
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

test("errors carry the spec's code, message, details and status", bounded, async () => {
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

test("a run to its end, watched live, and the task list page after page", bounded, async () => {
  const task = await client.createTask({ input: "Summarise" });
  const run = await client.runTask(task.taskId, { pollMs: 200, waitMs: 50_000 });
  const watched = await client.createTask({ input: "Summarise" });
  await client.startRun(watched.taskId);
  const updates = [];
  for await (const update of client.watchTask(watched.taskId, { signal: AbortSignal.timeout(50_000) })) updates.push(update);
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

test("a rate-limited call is tried again after Retry-After, with the same Idempotency-Key", bounded, async () => {
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

test("bytes are uploaded as a file named by fileName or relativePath; anything else is a TypeError before any request", bounded, async () => {
  const task = await client.createTask({ input: "bytes" });
  const buffer = await client.uploadArtifact(task.taskId, Buffer.from("m,a\nJan,1\n"), { relativePath: "data/sales.csv" });
  const bytes = await client.uploadArtifact(task.taskId, new TextEncoder().encode("{}"), { fileName: "a.json" });
  const inFolder = await client.uploadArtifact(task.taskId, new Blob(["x"]).slice(), { relativePath: "data/" });
  assert.deepEqual([buffer.fileName, buffer.relativePath], ["sales.csv", "data/sales.csv"]);
  assert.deepEqual([bytes.fileName, bytes.relativePath, bytes.fileSize], ["a.json", "a.json", 2]);
  assert.equal(inFolder.relativePath, "data/upload.bin");
  assert.equal(await (await client.downloadArtifact(task.taskId, buffer.artifactId)).text(), "m,a\nJan,1\n");
  let calls = 0;
  const counting = new AutoGPTClient({ baseURL: "http://agent.test", fetch: async () => (calls++, Response.json({})) });
  await assert.rejects(counting.uploadArtifact("t1", "sales.csv"), { name: "TypeError", message: /Blob, File, ArrayBuffer or typed array.*not String \(a path\?/ });
  await assert.rejects(counting.uploadArtifact("t1", { size: 3 }), { name: "TypeError", message: /not Object$/ });
  await assert.rejects(counting.uploadArtifact("t1", null), { name: "TypeError", message: /not null$/ });
  assert.equal(calls, 0);
});

test("429 INSUFFICIENT_RESOURCES (every run slot taken) is tried once; RATE_LIMITED and a read's 503 are tried again", bounded, async (t) => {
  const full = await scripted(t, () => [429, envelope("INSUFFICIENT_RESOURCES", { limit: 5 }), { "Retry-After": "0" }]);
  const fullClient = new AutoGPTClient({ baseURL: full.baseURL });
  await assert.rejects(fullClient.startRun("t1"), { code: "INSUFFICIENT_RESOURCES", status: 429 });
  await assert.rejects(fullClient.getTask("t1"), { code: "INSUFFICIENT_RESOURCES" }); // a read, safe to repeat: still once
  assert.deepEqual(full.seen, ["POST /tasks/t1/run", "GET /tasks/t1"]);
  const refused = new Set(); // the first POST and the first GET
  const busy = await scripted(t, (method) => {
    if (refused.has(method)) return [200, method === "POST" ? RUNNING : TASK];
    refused.add(method);
    return method === "POST" ? [429, envelope("RATE_LIMITED"), { "Retry-After": "0" }] : [503, envelope("INTERNAL_ERROR")];
  });
  const busyClient = new AutoGPTClient({ baseURL: busy.baseURL });
  assert.equal((await busyClient.startRun("t1")).runId, "r1");
  assert.equal((await busyClient.getTask("t1")).taskId, "t1");
  assert.deepEqual(busy.seen, ["POST /tasks/t1/run", "POST /tasks/t1/run", "GET /tasks/t1", "GET /tasks/t1"]);
});

test("runTask gives up on a run that never ends after waitMs (TIMEOUT), and stops at once when the caller aborts", bounded, async (t) => {
  const caller = new AbortController();
  let abortAt = Infinity; // the caller aborts while this request is answered
  const endless = await scripted(t, (method) => {
    if (endless.seen.length === abortAt) caller.abort();
    return [method === "POST" ? 201 : 200, RUNNING];
  });
  const endlessClient = new AutoGPTClient({ baseURL: endless.baseURL });
  const warnings = [];
  const warned = (warning) => warnings.push(String(warning));
  process.on("warning", warned);
  t.after(() => process.off("warning", warned));
  const started = Date.now();
  await assert.rejects(endlessClient.runTask("t1", { pollMs: 20, waitMs: 300, signal: new AbortController().signal }), (error) => {
    assert.ok(error instanceof AutoGPTError);
    assert.equal(error.code, "TIMEOUT");
    assert.match(error.message, /t1 had not ended after 300 ms/);
    assert.deepEqual(error.details, { task_id: "t1", run_id: "r1", status: "running", wait_ms: 300 });
    return true;
  });
  assert.ok(Date.now() - started < 2_000);
  const polled = endless.seen.length;
  assert.ok(polled >= 3 && endless.seen.slice(1).every((s) => s === "GET /tasks/t1/run"), endless.seen.join());
  abortAt = polled + 4; // the second run's start and three polls
  await assert.rejects(endlessClient.runTask("t1", { pollMs: 20, signal: caller.signal }), { name: "AbortError" });
  assert.equal(endless.seen.length, abortAt);
  await new Promise(setImmediate); // Node emits its warnings on the next turn
  assert.deepEqual(warnings, []); // no "abort" listener left behind a poll: none piles up on the signal
});

test("loops end: paging at an empty page whatever `pages` says, a retry whose Retry-After is past the call's timeout", bounded, async (t) => {
  const pages = await scripted(t, (method, path) =>
    [200, path.endsWith("/artifacts") ? { artifacts: [], pagination: { page: 1, size: 100, total: 10 ** 8, pages: 10 ** 6 } } : { tasks: [], pagination: { page: 1, size: 1, total: 10 ** 6, pages: 10 ** 6 } }],
  );
  const paging = new AutoGPTClient({ baseURL: pages.baseURL });
  const listed = [];
  for await (const task of paging.iterTasks({ size: 1 })) listed.push(task);
  assert.deepEqual([listed, await paging.getArtifacts("t1")], [[], []]);
  assert.deepEqual(pages.seen, ["GET /tasks", "GET /tasks/t1/artifacts"]);
  const later = await scripted(t, () => [429, envelope("RATE_LIMITED"), { "Retry-After": "3600" }]);
  await assert.rejects(new AutoGPTClient({ baseURL: later.baseURL, timeout: 5_000 }).getTask("t1"), { code: "RATE_LIMITED" });
  assert.equal(later.seen.length, 1);
  const idle = await client.createTask({ input: "never run" }); // watched, it would stay "created" for ever
  const aborted = AbortSignal.abort();
  for await (const update of client.watchTask(idle.taskId, { signal: aborted })) assert.fail(`after the abort: ${update.status}`);
});

test("camelCase here, snake_case on the wire; CommonJS too", () => {
  assert.deepEqual(fromWire({ task_id: "t", additional_input: { keep_me: 1 } }), { taskId: "t", additionalInput: { keep_me: 1 } });
  assert.deepEqual(toWire({ maxSteps: 3 }), { max_steps: 3 });
  const require = createRequire(import.meta.url);
  assert.equal(typeof require("../dist/cjs/index.js").AutoGPTClient, "function");
});

test("a GET asked again is revalidated: 304 while unchanged, the kept answer reused, a change read anew", bounded, async () => {
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

// -- API keys (issue 21): no dev server needed -------------------------------------------------------------------

const MULTIPART_SIZE = MULTIPART_LIMIT + 1; // a presigned S3 POST, then `complete`
const KEY = { key_id: "0123456789abcdef", name: "ci", created_at: "2025-01-01T00:00:00Z", budget_usd: null, revoked_at: null };

/** A client whose fetch answers from `answer(method, url)` ([status, body]) and records what it was asked. */
function recording(answer, options = {}) {
  const asked = [];
  const client = new AutoGPTClient({
    baseURL: "http://agent.test",
    ...options,
    fetch: async (url, init) => {
      const sent = init.body instanceof FormData ? "form" : init.body === undefined ? undefined : JSON.parse(init.body);
      asked.push({ method: init.method, url: String(url), headers: init.headers, body: sent });
      const [status, body] = answer(init.method, new URL(url));
      return status === 204 ? new Response(null, { status }) : Response.json(body, { status });
    },
  });
  return { client, asked };
}

test("the key goes as Authorization: Bearer to the API, never to S3; the keys routes", bounded, async () => {
  const created = { ...KEY, budget_usd: 5, api_key: "agk_the-secret" };
  const revoked = { ...KEY, key_id: "fedcba9876543210", budget_usd: 2.5, revoked_at: "2025-01-02T00:00:00Z" };
  const ticket = { artifact_id: "a1", upload: { url: "http://s3.test/bucket", fields: { key: "k" } } };
  const { client: keyed, asked } = recording((method, url) => {
    if (url.host === "s3.test") return [204];
    if (url.pathname.endsWith("/artifacts/uploads")) return [201, ticket];
    if (url.pathname.endsWith("/complete")) return [200, { artifact_id: "a1", file_name: "big.bin", relative_path: "big.bin" }];
    if (method === "POST") return [201, created];
    if (method === "GET") return [200, { keys: [revoked, KEY] }];
    return [200, { success: true, message: "key revoked" }];
  }, { apiKey: "the-operator" });
  const made = await keyed.createKey({ name: "ci", budgetUsd: 5 });
  await keyed.createKey({ name: "ci" });
  const listed = await keyed.listKeys();
  const gone = await keyed.revokeKey("0123456789abcdef");
  await keyed.uploadArtifact("t1", new Uint8Array(MULTIPART_SIZE), { fileName: "big.bin" });
  assert.deepEqual(asked.slice(0, 4).map((a) => [a.method, new URL(a.url).pathname, a.body]), [
    ["POST", "/ap/v1/agent/keys", { name: "ci", budget_usd: 5 }],
    ["POST", "/ap/v1/agent/keys", { name: "ci" }],
    ["GET", "/ap/v1/agent/keys", undefined],
    ["DELETE", "/ap/v1/agent/keys/0123456789abcdef", undefined],
  ]);
  assert.deepEqual(asked.map((a) => [new URL(a.url).host, a.headers.Authorization ?? null]), [
    ...Array(4).fill(["agent.test", "Bearer the-operator"]),
    ["agent.test", "Bearer the-operator"],
    ["s3.test", null], // a presigned POST: S3 refuses a request with an Authorization it did not sign
    ["agent.test", "Bearer the-operator"],
  ]);
  assert.ok(asked.every((a) => !("x-api-key" in a.headers)));
  assert.deepEqual(made, { keyId: "0123456789abcdef", name: "ci", createdAt: "2025-01-01T00:00:00Z", budgetUsd: 5, revokedAt: null, apiKey: "agk_the-secret" });
  assert.deepEqual(listed.map((k) => [k.keyId, k.budgetUsd, k.revokedAt]), [["fedcba9876543210", 2.5, "2025-01-02T00:00:00Z"], ["0123456789abcdef", null, null]]);
  assert.deepEqual(gone, { success: true, message: "key revoked" });
  const { client: keyless, asked: askedKeyless } = recording(() => [200, { keys: [] }]);
  assert.deepEqual(await keyless.listKeys(), []);
  assert.equal(askedKeyless[0].headers.Authorization, undefined);
});

test("401 UNAUTHORIZED, 403 FORBIDDEN and 404 KEY_NOT_FOUND are AutoGPTErrors, asked once", bounded, async () => {
  const answers = [
    [401, envelope("UNAUTHORIZED")],
    [403, envelope("FORBIDDEN")],
    [404, envelope("KEY_NOT_FOUND", { key_id: "k" })],
    [401, { message: "Unauthorized" }], // a gateway's own answer, without the spec's envelope
  ];
  const { client: refusing, asked } = recording(() => answers.shift(), { apiKey: "sk-revoked" });
  await assert.rejects(refusing.getTask("t1"), (e) => e instanceof AutoGPTError && e.code === "UNAUTHORIZED" && e.status === 401);
  await assert.rejects(refusing.listKeys(), { code: "FORBIDDEN", status: 403 });
  await assert.rejects(refusing.revokeKey("k"), { code: "KEY_NOT_FOUND", status: 404, details: { key_id: "k" } });
  await assert.rejects(refusing.status(), { status: 401, message: /Unauthorized/ });
  assert.equal(asked.length, 4); // reads are safe to repeat, but a refused key is not retried
});

test("every WebSocket carries the key as ?token= (URL-encoded); a failed one does not print it", bounded, async (t) => {
  const handshakes = [];
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  server.on("connection", (socket, request) => {
    handshakes.push(request.url);
    const logs = request.url.includes("logs");
    const message = logs
      ? { type: "log", level: "INFO", message: "hello", timestamp: "a", task_id: "t1", component: "x" }
      : { type: "status_update", task_id: "t1", status: "completed", progress: 1, current_step: null, timestamp: "a" };
    socket.send(JSON.stringify(message), () => socket.close());
  });
  await new Promise((resolve) => server.once("listening", resolve));
  t.after(() => new Promise((resolve) => (server.clients.forEach((c) => c.terminate()), server.close(resolve))));
  const port = server.address().port;
  const secret = "sk 1/+&=?";
  const local = new AutoGPTClient({ baseURL: `http://127.0.0.1:${port}`, apiKey: secret });
  const onAws = new AutoGPTClient({ baseURL: "http://agent.test", websocketURL: `ws://127.0.0.1:${port}`, apiKey: secret });
  const signal = AbortSignal.timeout(30_000);
  const got = [];
  for await (const update of local.watchTask("t1", { signal })) got.push(update.status);
  for await (const record of local.streamLogs({ level: "INFO" }, { signal })) got.push(record.message);
  for await (const update of onAws.watchTask("t1", { signal })) got.push(update.status);
  for await (const record of onAws.streamLogs({}, { signal })) got.push(record.message);
  assert.deepEqual(got, ["completed", "hello", "completed", "hello"]);
  const token = encodeURIComponent(secret).replace(/%20/g, "+");
  assert.deepEqual(handshakes, [
    `/ap/v1/agent/tasks/t1/ws?token=${token}`,
    `/ap/v1/agent/logs/ws?level=INFO&token=${token}`,
    `/?task_id=t1&token=${token}`,
    `/?token=${token}&channel=logs`,
  ]);
  assert.deepEqual(handshakes.map((h) => new URL(h, "ws://x").searchParams.get("token")), Array(4).fill(secret));
  const closed = new AutoGPTClient({ baseURL: "http://127.0.0.1:9", apiKey: secret }); // nothing listens there
  await assert.rejects(closed.watchTask("t1", { signal }).next(), (error) => {
    assert.equal(error.code, "CONNECTION_ERROR");
    assert.match(error.message, /\?token=\*\*\* failed$/);
    assert.ok(!/sk(\+|%20| )1/.test(error.message), error.message);
    return true;
  });
});
