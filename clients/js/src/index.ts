// The AutoGPT v0.5.1 agent API for JavaScript: camelCase here, the API's snake_case on the wire (mapped in
// `fromWire`/`toWire` only), errors as AutoGPTError, retries for what is safe to repeat. Platform APIs only:
// fetch, FormData, Blob, AbortSignal, WebSocket (on Node without a global WebSocket, the optional `ws` package).

export const API_PREFIX = "/ap/v1/agent";
/** Files up to this size go through the API as multipart (its limit is 4.5 MB); larger ones straight to S3. */
export const MULTIPART_LIMIT = 4_000_000;
/** How long `runTask` waits by default: a run stops starting steps after the server's run limit (1 hour at most). */
export const RUN_WAIT_MS = 65 * 60_000;

/** What `uploadArtifact` sends: a Blob or File, or bytes (a Node Buffer, any typed array or DataView, an ArrayBuffer). */
export type UploadData = Blob | ArrayBuffer | ArrayBufferView;

export interface Artifact {
  artifactId: string;
  fileName: string;
  relativePath: string;
  fileSize?: number;
  agentCreated: boolean;
  createdAt?: string;
}

export interface Task {
  taskId: string;
  input: string;
  additionalInput: Record<string, unknown>;
  status: "created" | "running" | "completed" | "failed";
  createdAt: string;
  modifiedAt: string;
  artifacts: Artifact[];
}

export interface Step {
  stepId: string;
  taskId: string;
  name?: string;
  status: "created" | "running" | "completed";
  input?: string | null;
  additionalInput: Record<string, unknown>;
  output?: string | null;
  additionalOutput: Record<string, unknown>;
  artifacts: Artifact[];
  isLast: boolean;
  createdAt?: string;
}

export interface Pagination {
  page: number;
  size: number;
  total: number;
  pages: number;
}

export interface TaskList {
  tasks: Task[];
  pagination: Pagination;
}

export interface StepList {
  steps: Step[];
  pagination: Pagination;
}

export interface Run {
  taskId: string;
  runId: string;
  status: "running" | "completed" | "failed";
  maxSteps: number;
  steps?: number | null;
  startedAt: string;
  endedAt?: string | null;
  reason?: string | null;
}

export interface AgentStatus {
  agentId: string;
  status: "running" | "restarting";
  version: string;
  capabilities: string[];
  activeTasks: number;
  totalTasks: number;
  uptime: string;
  memoryUsage: { used: string; total: string };
  apiUsage: { openaiTokensUsed: number; openaiCost: number };
}

export interface StatusUpdate {
  type: "status_update";
  taskId: string;
  status: Task["status"];
  progress: number;
  currentStep: string | null;
  timestamp: string;
}

export interface LogRecord {
  type: "log";
  level: string;
  message: string;
  timestamp: string;
  taskId: string;
  component: string;
}

/** An API key as listed (`listKeys`): never its secret. `revokedAt` is set once it is revoked. */
export interface ApiKey {
  keyId: string;
  name: string;
  createdAt: string;
  budgetUsd: number | null;
  revokedAt: string | null;
}

/** A new key (`createKey`): `apiKey` is its secret, which the server shows this once. */
export interface CreatedKey extends ApiKey {
  apiKey: string;
}

export interface CallOptions {
  signal?: AbortSignal;
  /** Milliseconds for this call (default: the client's timeout). */
  timeout?: number;
}

export interface ClientOptions {
  /** The server, e.g. http://localhost:8000 (the API's prefix is added). */
  baseURL?: string;
  /** Sent as `Authorization: Bearer <key>` to the API (never to presigned S3 URLs), and as `?token=<key>` on the
   * WebSocket channels (a browser cannot set headers on a WebSocket handshake). */
  apiKey?: string;
  /** Milliseconds per call. */
  timeout?: number;
  maxRetries?: number;
  /** On AWS: the stack's WebSocketUrl (channels are chosen by query string there). */
  websocketURL?: string;
  fetch?: typeof fetch;
}

/** An error answer of the API in the spec's envelope; or, status 0, a failed connection (CONNECTION_ERROR) or a wait
 * that ran out (TIMEOUT: `runTask`). */
export class AutoGPTError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
    readonly details: Record<string, unknown> = {},
  ) {
    super(`${code} (${status}): ${message}`);
    this.name = "AutoGPTError";
  }
}

// -- the wire: snake_case there, camelCase here; what the user wrote in additional_* is left as it is ------------

const KEEP = new Set(["additional_input", "additional_output", "additionalInput", "additionalOutput"]);

function convert(value: unknown, key: (k: string) => string): unknown {
  if (Array.isArray(value)) return value.map((v) => convert(v, key));
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>).map(([k, v]) => [key(k), KEEP.has(k) ? v : convert(v, key)]),
  );
}

export const fromWire = <T>(value: unknown): T =>
  convert(value, (k) => k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase())) as T;
export const toWire = (value: unknown): unknown => convert(value, (k) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`));

// -- the client ----------------------------------------------------------------------------------------------------

interface Call extends CallOptions {
  method: string;
  path: string;
  body?: unknown;
  form?: FormData;
  query?: Record<string, string | number | undefined>;
  /** The server answers a repeat the same (reads, deletes, keyed POSTs): retried after 502/503/504 or a lost connection. */
  safe?: boolean;
  idempotencyKey?: string;
  raw?: boolean;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason); // an aborted signal fires no more "abort" events
    const abort = () => (clearTimeout(timer), reject(signal?.reason));
    // The listener goes when the sleep ends: a poll loop would otherwise pile one a turn onto the caller's signal.
    const timer = setTimeout(() => (signal?.removeEventListener("abort", abort), resolve()), ms);
    signal?.addEventListener("abort", abort, { once: true });
  });

/** Answers kept for revalidation: a GET asked again sends its last ETag, and a 304 reuses the kept answer. */
const VALIDATED_KEPT = 256;

export class AutoGPTClient {
  readonly baseURL: string;
  private readonly options: Required<Pick<ClientOptions, "timeout" | "maxRetries">> & ClientOptions;
  // URL -> the last answer that carried an ETag, oldest first (a Map keeps insertion order).
  private readonly validated = new Map<string, { etag: string; body: unknown }>();

  constructor(options: ClientOptions = {}) {
    this.baseURL = (options.baseURL ?? "http://localhost:8000").replace(/\/+$/, "").replace(API_PREFIX, "");
    this.options = { timeout: 60_000, maxRetries: 3, ...options };
  }

  // tasks
  async createTask(body: { input: string; additionalInput?: Record<string, unknown> }, o?: CallOptions): Promise<Task> {
    const wire = { input: body.input, additional_input: body.additionalInput ?? {} };
    return fromWire(await this.call({ method: "POST", path: "/tasks", body: wire, safe: true, idempotencyKey: key(), ...o }));
  }

  async listTasks(q: { page?: number; size?: number; status?: string; createdAfter?: string } = {}, o?: CallOptions): Promise<TaskList> {
    const query = { page: q.page, size: q.size, status: q.status, created_after: q.createdAfter };
    return fromWire(await this.call({ method: "GET", path: "/tasks", query, safe: true, ...o }));
  }

  /** Every task, newest first, page after page. */
  async *iterTasks(q: { size?: number; status?: string } = {}, o?: CallOptions): AsyncGenerator<Task> {
    for (let page = 1; ; page++) {
      const listed = await this.listTasks({ ...q, page, size: q.size ?? 100 }, o);
      yield* listed.tasks;
      if (!listed.tasks.length || page >= listed.pagination.pages) return; // an empty page ends it whatever `pages` says
    }
  }

  async getTask(taskId: string, o?: CallOptions): Promise<Task> {
    return fromWire(await this.call({ method: "GET", path: `/tasks/${taskId}`, safe: true, ...o }));
  }

  async deleteTask(taskId: string, o?: CallOptions): Promise<{ success: boolean; message: string }> {
    return fromWire(await this.call({ method: "DELETE", path: `/tasks/${taskId}`, safe: true, ...o }));
  }

  // steps
  async executeStep(
    taskId: string,
    body: { input?: string; additionalInput?: Record<string, unknown> } = {},
    o?: CallOptions,
  ): Promise<Step> {
    const wire = { input: body.input ?? null, additional_input: body.additionalInput ?? {} };
    const path = `/tasks/${taskId}/steps`;
    return fromWire(await this.call({ method: "POST", path, body: wire, safe: true, idempotencyKey: key(), ...o }));
  }

  async listSteps(taskId: string, q: { page?: number; size?: number } = {}, o?: CallOptions): Promise<StepList> {
    return fromWire(await this.call({ method: "GET", path: `/tasks/${taskId}/steps`, query: q, safe: true, ...o }));
  }

  async getStep(taskId: string, stepId: string, o?: CallOptions): Promise<Step> {
    return fromWire(await this.call({ method: "GET", path: `/tasks/${taskId}/steps/${stepId}`, safe: true, ...o }));
  }

  // artifacts
  async getArtifacts(taskId: string, o?: CallOptions): Promise<Artifact[]> {
    const found: Artifact[] = [];
    for (let page = 1; ; page++) {
      const body = await this.call({ method: "GET", path: `/tasks/${taskId}/artifacts`, query: { page, size: 100 }, safe: true, ...o });
      const listed = fromWire<{ artifacts: Artifact[]; pagination?: Pagination }>(body);
      found.push(...listed.artifacts);
      if (!listed.artifacts.length || page >= (listed.pagination?.pages ?? 1)) return found;
    }
  }

  /**
   * Multipart through the API for small files; a presigned S3 POST, then `complete`, for large ones. The name is
   * `fileName`, else the File's, else the last segment of `relativePath` (the server reads a path that does not
   * end in the file's name as a folder); a `relativePath` ending in "/" is a folder.
   */
  async uploadArtifact(
    taskId: string,
    data: UploadData,
    options: { fileName?: string; relativePath?: string; onProgress?: (sent: number, total: number) => void } & CallOptions = {},
  ): Promise<Artifact> {
    const file = asBlob(data);
    const inPath = options.relativePath?.endsWith("/") ? undefined : options.relativePath?.split("/").pop();
    const name = options.fileName || (file as File).name || inPath || "upload.bin";
    if (file.size <= MULTIPART_LIMIT) {
      const form = new FormData();
      if (options.relativePath) form.append("relative_path", options.relativePath);
      form.append("file", file, name);
      const done = await this.call({ method: "POST", path: `/tasks/${taskId}/artifacts`, form, ...options });
      options.onProgress?.(file.size, file.size);
      return fromWire(done);
    }
    const ticketBody = { file_name: name, file_size: file.size, ...(options.relativePath ? { relative_path: options.relativePath } : {}) };
    const ticket = (await this.call({ method: "POST", path: `/tasks/${taskId}/artifacts/uploads`, body: ticketBody, ...options })) as {
      artifact_id: string;
      upload: { url: string; fields: Record<string, string> };
    };
    const form = new FormData();
    for (const [k, v] of Object.entries(ticket.upload.fields)) form.append(k, v);
    form.append("file", file, name);
    await this.call({ method: "POST", path: ticket.upload.url, form, raw: true, ...options });
    options.onProgress?.(file.size, file.size);
    const path = `/tasks/${taskId}/artifacts/uploads/${ticket.artifact_id}/complete`;
    return fromWire(await this.call({ method: "POST", path, safe: true, ...options }));
  }

  /** The file's content (the API redirects to a presigned S3 URL, which fetch follows). */
  async downloadArtifact(taskId: string, artifactId: string, o?: CallOptions): Promise<Blob> {
    const response = (await this.call({ method: "GET", path: `/tasks/${taskId}/artifacts/${artifactId}`, safe: true, raw: true, ...o })) as Response;
    return response.blob();
  }

  async deleteArtifact(taskId: string, artifactId: string, o?: CallOptions): Promise<{ success: boolean; message: string }> {
    return fromWire(await this.call({ method: "DELETE", path: `/tasks/${taskId}/artifacts/${artifactId}`, safe: true, ...o }));
  }

  // runs and the agent
  async startRun(taskId: string, body: { maxSteps?: number } = {}, o?: CallOptions): Promise<Run> {
    const wire = body.maxSteps ? { max_steps: body.maxSteps } : undefined;
    return fromWire(await this.call({ method: "POST", path: `/tasks/${taskId}/run`, body: wire, ...o }));
  }

  async getRun(taskId: string, o?: CallOptions): Promise<Run> {
    return fromWire(await this.call({ method: "GET", path: `/tasks/${taskId}/run`, safe: true, ...o }));
  }

  async cancelTask(taskId: string, o?: CallOptions): Promise<Run> {
    return fromWire(await this.call({ method: "POST", path: `/tasks/${taskId}/cancel`, safe: true, ...o }));
  }

  /**
   * Starts the task's run and resolves with the ended run, polling every `pollMs`. Waits at most `waitMs` in all
   * (default RUN_WAIT_MS), then throws AutoGPTError TIMEOUT; the run goes on on the server (`getRun`, `cancelTask`).
   */
  async runTask(taskId: string, options: { maxSteps?: number; pollMs?: number; waitMs?: number } & CallOptions = {}): Promise<Run> {
    const waitMs = options.waitMs ?? RUN_WAIT_MS;
    const deadline = AbortSignal.timeout(waitMs);
    const o = { ...options, signal: options.signal ? AbortSignal.any([options.signal, deadline]) : deadline };
    let run: Run | undefined;
    try {
      run = await this.startRun(taskId, { maxSteps: options.maxSteps }, o);
      while (run.status === "running") {
        await sleep(options.pollMs ?? 1000, o.signal);
        run = await this.getRun(taskId, o);
      }
      return run;
    } catch (error) {
      if (!deadline.aborted || options.signal?.aborted) throw error; // the caller's abort stays an AbortError
      const message = `the run of task ${taskId} had not ended after ${waitMs} ms (waitMs); it goes on on the server`;
      const details = { task_id: taskId, run_id: run?.runId ?? null, status: run?.status ?? null, wait_ms: waitMs };
      throw new AutoGPTError("TIMEOUT", message, 0, details);
    }
  }

  async status(o?: CallOptions): Promise<AgentStatus> {
    return fromWire(await this.call({ method: "GET", path: "/status", safe: true, ...o }));
  }

  async restart(o?: CallOptions): Promise<{ success: boolean; message: string; estimatedDowntime: string }> {
    return fromWire(await this.call({ method: "POST", path: "/restart", ...o }));
  }

  // API keys: operator-only routes (the client must hold the operator's key, else AutoGPTError FORBIDDEN, 403)
  /** A new client key; its `apiKey` (the secret) is shown this once. Not retried after a 5xx or a lost connection:
   * a second key would be made whose secret nobody saw. */
  async createKey(body: { name: string; budgetUsd?: number }, o?: CallOptions): Promise<CreatedKey> {
    const wire = { name: body.name, ...(body.budgetUsd === undefined ? {} : { budget_usd: body.budgetUsd }) };
    return fromWire(await this.call({ method: "POST", path: "/keys", body: wire, ...o }));
  }

  /** Every key, newest first, revoked ones too (`revokedAt` set); never their secrets. */
  async listKeys(o?: CallOptions): Promise<ApiKey[]> {
    return fromWire<{ keys: ApiKey[] }>(await this.call({ method: "GET", path: "/keys", safe: true, ...o })).keys;
  }

  async revokeKey(keyId: string, o?: CallOptions): Promise<{ success: boolean; message: string }> {
    const path = `/keys/${encodeURIComponent(keyId)}`;
    return fromWire(await this.call({ method: "DELETE", path, safe: true, ...o }));
  }

  // live channels
  /** The task's status updates, its current status first, until it is completed or failed. */
  async *watchTask(taskId: string, o: { signal?: AbortSignal } = {}): AsyncGenerator<StatusUpdate> {
    for await (const message of this.channel<StatusUpdate>(this.channelURL({ taskId }), o.signal)) {
      yield message;
      if (message.status === "completed" || message.status === "failed") return;
    }
  }

  /** The agent's log records (of one task, from a minimum level) until the signal aborts. */
  streamLogs(filter: { taskId?: string; level?: string } = {}, o: { signal?: AbortSignal } = {}): AsyncGenerator<LogRecord> {
    return this.channel<LogRecord>(this.channelURL({ ...filter, logs: true }), o.signal);
  }

  private channelURL(c: { taskId?: string; level?: string; logs?: boolean }): string {
    const query = new URLSearchParams();
    if (c.taskId && (c.logs || this.options.websocketURL)) query.set("task_id", c.taskId);
    if (c.level) query.set("level", c.level);
    if (this.options.apiKey) query.set("token", this.options.apiKey); // a browser's handshake carries no headers
    if (this.options.websocketURL) {
      if (c.logs) query.set("channel", "logs");
      return `${this.options.websocketURL}?${query}`;
    }
    const root = this.baseURL.replace(/^http/, "ws") + API_PREFIX;
    const path = c.logs ? "/logs/ws" : `/tasks/${c.taskId}/ws`;
    return `${root}${path}${[...query].length ? `?${query}` : ""}`;
  }

  private async *channel<T>(url: string, signal?: AbortSignal): AsyncGenerator<T> {
    if (signal?.aborted) return; // its "abort" event is past: the socket below would never be closed by it
    const Socket = (globalThis as { WebSocket?: typeof WebSocket }).WebSocket ?? (await loadWs());
    const socket = new Socket(url);
    const queue: (T | Error | null)[] = [];
    let wake: (() => void) | undefined;
    const push = (item: T | Error | null) => (queue.push(item), wake?.());
    socket.onmessage = (event: MessageEvent) => push(fromWire<T>(JSON.parse(String(event.data))));
    // The key is not repeated in the message (errors get logged). A refused key looks the same here: a browser's
    // WebSocket does not say what the handshake was answered.
    const shown = url.replace(/([?&]token=)[^&]*/, "$1***");
    socket.onerror = () => push(new AutoGPTError("CONNECTION_ERROR", `WebSocket ${shown} failed`, 0));
    socket.onclose = () => push(null);
    signal?.addEventListener("abort", () => socket.close(), { once: true });
    try {
      for (;;) {
        if (!queue.length) await new Promise<void>((resolve) => (wake = resolve));
        const item = queue.shift();
        if (item === null || item === undefined) return;
        if (item instanceof Error) throw item;
        yield item;
      }
    } finally {
      socket.close();
    }
  }

  // one call, with retries
  private async call(c: Call): Promise<unknown> {
    const url = new URL(c.path.startsWith("http") ? c.path : this.baseURL + API_PREFIX + c.path);
    for (const [k, v] of Object.entries(c.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { Accept: "application/json" };
    if (this.options.apiKey && !c.path.startsWith("http")) headers.Authorization = `Bearer ${this.options.apiKey}`;
    if (c.idempotencyKey) headers["Idempotency-Key"] = c.idempotencyKey;
    if (c.body !== undefined) headers["Content-Type"] = "application/json";
    const kept = c.method === "GET" && !c.raw ? this.validated.get(url.href) : undefined;
    if (kept) headers["If-None-Match"] = kept.etag;
    const doFetch = this.options.fetch ?? fetch;
    for (let attempt = 0; ; attempt++) {
      const signal = AbortSignal.any([AbortSignal.timeout(c.timeout ?? this.options.timeout), ...(c.signal ? [c.signal] : [])]);
      let response: Response | undefined;
      try {
        response = await doFetch(url, { method: c.method, headers, body: c.form ?? (c.body === undefined ? undefined : JSON.stringify(c.body)), signal });
      } catch (error) {
        if (c.signal?.aborted) throw error;
        if (!(c.safe && attempt < this.options.maxRetries)) throw new AutoGPTError("CONNECTION_ERROR", String(error), 0);
      }
      if (response) {
        const retry = attempt < this.options.maxRetries && (await retryable(response, c, c.timeout ?? this.options.timeout));
        if (!retry) {
          if (response.status === 304 && kept) return this.revalidated(url.href, kept);
          if (!response.ok) throw await asError(response);
          if (c.raw) return response;
          const body = response.status === 204 ? undefined : await response.json();
          const etag = response.headers.get("etag");
          return c.method === "GET" && etag ? this.revalidated(url.href, { etag, body }) : body;
        }
      }
      const after = Number(response?.headers.get("retry-after"));
      await sleep(Number.isFinite(after) && after > 0 ? after * 1000 : Math.min(8000, 250 * 2 ** attempt) * (0.5 + Math.random() / 2), c.signal);
    }
  }

  /** Keeps `answer` as the latest for `url` (the oldest goes past VALIDATED_KEPT); returns a copy of its body. */
  private revalidated(url: string, answer: { etag: string; body: unknown }): unknown {
    this.validated.delete(url);
    this.validated.set(url, answer);
    if (this.validated.size > VALIDATED_KEPT) this.validated.delete(this.validated.keys().next().value as string);
    return structuredClone(answer.body); // a caller that changes what it got does not change the kept answer
  }
}

async function retryable(response: Response, c: Call, timeout: number): Promise<boolean> {
  // A wait longer than the call may take is not waited for: the caller gets the answer (its Retry-After) instead.
  if (Number(response.headers.get("retry-after")) * 1000 > timeout) return false;
  if (response.status === 429) {
    const code = await response.clone().json().then((b: { error?: { code?: string } }) => b.error?.code, () => undefined);
    return code === "RATE_LIMITED"; // refused before it ran; a full agent (INSUFFICIENT_RESOURCES) is the caller's call
  }
  return Boolean(c.safe) && [502, 503, 504].includes(response.status);
}

async function asError(response: Response): Promise<AutoGPTError> {
  const body = (await response.json().catch(() => ({}))) as { error?: { code?: string; message?: string; details?: Record<string, unknown> }; message?: string };
  const error = body.error;
  if (error?.code) return new AutoGPTError(error.code, error.message ?? "", response.status, error.details ?? {});
  return new AutoGPTError(response.status >= 500 ? "INTERNAL_ERROR" : "INVALID_REQUEST", body.message ?? `HTTP ${response.status}`, response.status);
}

function asBlob(data: unknown): Blob {
  if (data instanceof Blob) return data;
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return new Blob([data as BlobPart]);
  const got = data == null ? String(data) : (Object(data).constructor?.name ?? typeof data);
  const hint = typeof data === "string" ? " (a path? read it first: await readFile(path))" : "";
  throw new TypeError(`uploadArtifact takes a Blob, File, ArrayBuffer or typed array such as a Buffer, not ${got}${hint}`);
}

function key(): string {
  return globalThis.crypto.randomUUID();
}

async function loadWs(): Promise<typeof WebSocket> {
  try {
    const name = "ws"; // a variable: bundlers for the browser must not try to include it
    return ((await import(name)) as { WebSocket: typeof WebSocket }).WebSocket;
  } catch {
    throw new AutoGPTError("CONNECTION_ERROR", "no WebSocket here: on Node before 22, install the `ws` package", 0);
  }
}
