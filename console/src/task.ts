// A task's page (#/tasks/<id>): status badge and progress bar moving live on the WebSocket status channel, Run and
// Cancel, a manual step, the steps as a timeline with their tool calls folded, the files, the live log.

import type { Artifact, Step, StatusUpdate, Task } from "@autogpt/client";
import { api, BASE, hasKey, isNotFound, live, message } from "./api";
import { h, replace } from "./dom";
import { statusWord, t, when } from "./i18n";
import { badge } from "./tasks";

const IMAGE = /\.(png|jpe?g|gif|webp|svg)$/i;
const MAX_LOG_LINES = 500;

interface ToolCall {
  id?: string;
  name?: string;
  arguments?: unknown;
  result?: unknown;
  output?: unknown;
}

export async function taskView(root: HTMLElement, signal: AbortSignal, taskId: string): Promise<void> {
  replace(root, h("p", { role: "status" }, t("loading")));
  let task: Task;
  try {
    task = await api((c) => c.getTask(taskId));
  } catch (error) {
    const text = isNotFound(error) ? t("notFound", taskId) : t("error", message(error));
    replace(root, h("h2", { tabindex: -1 }, text), h("p", {}, h("a", { href: "#/" }, t("back"))));
    return;
  }
  if (signal.aborted) return;

  const statusBadge = h("span", { id: "task-status", class: `badge badge-${task.status}` }, statusWord(task.status));
  const progress = h("progress", { id: "task-progress", max: 1, value: task.status === "completed" ? 1 : 0 });
  const liveState = h("span", { class: "live-state", "aria-live": "polite" });
  const said = h("p", { class: "said", role: "status" });
  const runButton = h("button", { type: "button" }, t("run"));
  const cancelButton = h("button", { type: "button", class: "secondary" }, t("cancel"));
  const stepInput = h("input", { id: "step-input", type: "text", autocomplete: "off" });
  const steps = h("ol", { class: "timeline", "aria-busy": "true" });
  const files = h("ul", { class: "files" });
  const upload = h("input", { id: "file-upload", type: "file", multiple: true });
  const logs = h("ol", { class: "logs", tabindex: 0, "aria-label": t("logs") });
  let status = task.status;

  const setStatus = (next: string, fraction?: number): void => {
    status = next as Task["status"];
    statusBadge.className = `badge badge-${next}`;
    statusBadge.textContent = statusWord(next);
    if (fraction !== undefined) progress.value = fraction;
    else if (next === "completed") progress.value = 1;
    if ((next === "completed" || next === "failed") && said.textContent === t("runStarted")) said.textContent = "";
    const busy = next === "running";
    runButton.disabled = busy;
    cancelButton.disabled = !busy;
  };
  setStatus(task.status);

  // Steps, files and the task itself, after each status update; one refresh at a time, a request meanwhile runs once after.
  let refreshing: Promise<void> | undefined;
  let again = false;
  const refresh = (): void => {
    if (refreshing) return void (again = true);
    refreshing = (async () => {
      try {
        const [fresh, allSteps] = await Promise.all([api((c) => c.getTask(taskId)), listAllSteps(taskId)]);
        if (signal.aborted) return;
        if (fresh.status !== status) setStatus(fresh.status);
        drawSteps(steps, allSteps, taskId);
        drawFiles(files, fresh.artifacts, taskId, refresh, said);
      } catch (error) {
        said.textContent = t("error", message(error));
      }
    })().finally(() => {
      refreshing = undefined;
      if (again && !signal.aborted) (again = false), refresh();
    });
  };

  let watching = false;
  const watch = (): void => {
    if (watching || signal.aborted) return;
    watching = true;
    void live<StatusUpdate>(
      signal,
      (c) => c.watchTask(taskId, { signal }),
      (u) => {
        setStatus(u.status, u.progress);
        refresh();
      },
      (s) => {
        liveState.textContent = s === "reconnecting" ? t("reconnecting") : s === "live" ? t("live") : "";
      },
      () => status === "completed" || status === "failed",
    ).finally(() => (watching = false));
  };

  runButton.addEventListener("click", async () => {
    runButton.disabled = true;
    try {
      const run = await api((c) => c.startRun(taskId));
      said.textContent = t("runStarted");
      setStatus(run.status === "running" ? "running" : run.status);
      watch();
    } catch (error) {
      said.textContent = t("error", message(error));
      runButton.disabled = false;
    }
  });
  cancelButton.addEventListener("click", async () => {
    try {
      await api((c) => c.cancelTask(taskId));
      said.textContent = t("cancelled");
      refresh();
    } catch (error) {
      said.textContent = t("error", message(error));
    }
  });
  const stepForm = h(
    "form",
    {
      class: "step-form",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        const button = stepForm.querySelector("button");
        if (button) button.disabled = true;
        try {
          await api((c) => c.executeStep(taskId, { input: stepInput.value || undefined }));
          stepInput.value = "";
          refresh();
        } catch (error) {
          said.textContent = t("error", message(error));
        } finally {
          if (button) button.disabled = false;
        }
      },
    },
    h("label", { for: stepInput.id }, t("stepInput")),
    h("div", { class: "inline" }, stepInput, h("button", { type: "submit", class: "secondary" }, t("runStep"))),
  );
  const uploadForm = h(
    "form",
    {
      class: "upload-form",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        for (const file of [...(upload.files ?? [])]) {
          try {
            said.textContent = t("uploading", file.name);
            await api((c) => c.uploadArtifact(taskId, file, { fileName: file.name }));
          } catch (error) {
            said.textContent = t("error", message(error));
            return;
          }
        }
        said.textContent = "";
        upload.value = "";
        refresh();
      },
    },
    h("label", { for: upload.id }, t("uploadFiles")),
    h("div", { class: "inline" }, upload, h("button", { type: "submit", class: "secondary" }, t("upload"))),
  );

  replace(
    root,
    h("p", {}, h("a", { href: "#/" }, "← ", t("back"))),
    h(
      "section",
      { class: "card", "aria-labelledby": "task-title" },
      h("h2", { id: "task-title", class: "task-input", tabindex: -1 }, task.input),
      h("p", { class: "meta" }, statusBadge, " ", liveState, " · ", when(task.createdAt), " · ", h("code", {}, task.taskId)),
      h("div", { class: "progress-row" }, h("label", { for: "task-progress" }, t("progress")), progress),
      h("div", { class: "actions" }, runButton, cancelButton),
      said,
      stepForm,
    ),
    h("section", { class: "card", "aria-labelledby": "steps-title" }, h("h2", { id: "steps-title" }, t("steps")), steps),
    h("section", { class: "card", "aria-labelledby": "files-title" }, h("h2", { id: "files-title" }, t("taskFiles")), files, uploadForm),
    h("section", { class: "card", "aria-labelledby": "logs-title" }, h("h2", { id: "logs-title" }, t("logs")), logs),
  );
  drawFiles(files, task.artifacts, taskId, refresh, said);
  refresh();
  watch();
  void live(
    signal,
    (c) => c.streamLogs({ taskId, level: "INFO" }, { signal }),
    (record) => {
      logs.querySelector(".empty")?.remove();
      logs.append(h("li", { class: `log log-${record.level.toLowerCase()}` }, h("span", { class: "log-level" }, record.level), " ", h("time", {}, when(record.timestamp)), " ", record.message));
      while (logs.children.length > MAX_LOG_LINES) logs.firstElementChild?.remove();
    },
    () => undefined,
  );
  logs.append(h("li", { class: "empty" }, t("noLogs")));
}

async function listAllSteps(taskId: string): Promise<Step[]> {
  const all: Step[] = [];
  for (let page = 1; ; page++) {
    const listed = await api((c) => c.listSteps(taskId, { page, size: 100 }));
    all.push(...listed.steps);
    if (!listed.steps.length || page >= listed.pagination.pages) return all;
  }
}

const drawnSteps = new WeakMap<HTMLElement, string>();

function drawSteps(list: HTMLElement, steps: Step[], taskId: string): void {
  const seen = JSON.stringify(steps);
  if (drawnSteps.get(list) === seen) return;
  drawnSteps.set(list, seen);
  const open = new Set([...list.querySelectorAll<HTMLDetailsElement>("details[open]")].map((d) => d.dataset.key));
  list.setAttribute("aria-busy", "false");
  if (!steps.length) return replace(list, h("li", { class: "empty" }, t("noSteps")));
  replace(
    list,
    steps.map((step, i) => {
      const out = step.additionalOutput as { usage?: { total_tokens?: number }; cost_usd?: number; tool_calls?: ToolCall[]; model?: string };
      const calls = out.tool_calls ?? [];
      return h(
        "li",
        { class: "step" },
        h("h3", {}, t("stepN", i + 1), ": ", h("span", { class: "step-name" }, step.name ?? "—"), " ", badge(step.status)),
        step.input ? h("p", { class: "step-input" }, "› ", step.input) : null,
        step.output ? h("pre", { class: "output" }, step.output) : null,
        calls.map((call, n) => {
          const key = `${step.stepId}:${n}`;
          const result = call.result ?? call.output ?? resultFromOutput(step.output ?? "", call.name ?? "");
          return h(
            "details",
            { "data-key": key, open: open.has(key) },
            h("summary", {}, t("toolCalls"), ": ", h("code", {}, call.name ?? "?")),
            h("h4", {}, t("arguments")),
            h("pre", {}, pretty(call.arguments)),
            result ? h("h4", {}, t("result")) : null,
            result ? h("pre", {}, typeof result === "string" ? result : pretty(result)) : null,
          );
        }),
        h("p", { class: "meta" }, [out.model, out.usage?.total_tokens !== undefined ? t("tokens", out.usage.total_tokens) : "", out.cost_usd !== undefined ? t("cost", out.cost_usd.toFixed(4)) : "", when(step.createdAt)].filter(Boolean).join(" · ")),
        images(step.artifacts, taskId),
      );
    }),
  );
}

/** The part of a step's output that a tool's result was written as: "→ name: ..." up to the next tool's line. */
function resultFromOutput(output: string, name: string): string {
  const start = output.indexOf(`→ ${name}:`);
  if (start < 0 || !name) return "";
  const rest = output.slice(start + name.length + 3);
  const end = rest.search(/\n→ /);
  return (end < 0 ? rest : rest.slice(0, end)).trim();
}

function pretty(value: unknown): string {
  if (typeof value === "string") {
    try {
      return JSON.stringify(JSON.parse(value), null, 2);
    } catch {
      return value;
    }
  }
  return JSON.stringify(value, null, 2);
}

function images(artifacts: Artifact[], taskId: string): HTMLElement | null {
  const shown = artifacts.filter((a) => IMAGE.test(a.fileName));
  if (!shown.length) return null;
  const box = h("div", { class: "images" });
  for (const a of shown) {
    const img = h("img", { alt: a.fileName, loading: "lazy" });
    box.append(img);
    void api((c) => c.downloadArtifact(taskId, a.artifactId)).then((blob) => (img.src = URL.createObjectURL(blob)), () => img.remove());
  }
  return box;
}

/** The API's download URL: it answers with a 307 to the file's presigned S3 URL (fresh at each click). */
export function downloadURL(taskId: string, artifactId: string): string {
  return `${BASE.replace(/\/+$/, "")}/ap/v1/agent/tasks/${taskId}/artifacts/${artifactId}`;
}

function drawFiles(list: HTMLElement, artifacts: Artifact[], taskId: string, refresh: () => void, said: HTMLElement): void {
  const seen = JSON.stringify(artifacts);
  if (list.dataset.seen === seen) return;
  list.dataset.seen = seen;
  if (!artifacts.length) return replace(list, h("li", { class: "empty" }, t("noFiles")));
  replace(
    list,
    artifacts.map((a) => {
      const link = h("a", { href: downloadURL(taskId, a.artifactId), download: a.fileName }, a.fileName);
      // With a key the link cannot carry it: the client fetches the file (following the same redirect) instead.
      link.addEventListener("click", async (e) => {
        if (!hasKey()) return;
        e.preventDefault();
        try {
          const blob = await api((c) => c.downloadArtifact(taskId, a.artifactId));
          const url = URL.createObjectURL(blob);
          const save = h("a", { href: url, download: a.fileName });
          save.click();
          setTimeout(() => URL.revokeObjectURL(url), 60_000);
        } catch (error) {
          said.textContent = t("error", message(error));
        }
      });
      const remove = h("button", { type: "button", class: "secondary small", "aria-label": t("deleteFile", a.fileName) }, t("delete"));
      remove.addEventListener("click", async () => {
        try {
          await api((c) => c.deleteArtifact(taskId, a.artifactId));
          refresh();
        } catch (error) {
          said.textContent = t("error", message(error));
        }
      });
      const size = a.fileSize !== undefined ? ` · ${a.fileSize} B` : "";
      return h("li", {}, link, h("span", { class: "meta" }, size, a.agentCreated ? ` · ${t("agentMade")}` : ""), remove);
    }),
  );
}

