// The tasks page: the create form, and the list (newest first, status filter, pages, totals) kept fresh with
// conditional GETs: the client sends the last ETag, and an unchanged list costs a 304 and no re-render.

import type { Task, TaskList } from "@autogpt/client";
import { api, message } from "./api";
import { h, replace, sleep, uid } from "./dom";
import { statusWord, t, when } from "./i18n";

/** The API's allowed models (OPENAI_ALLOWED_MODELS' default; the server refuses any other). */
export const MODELS = ["gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-4.1-mini", "gpt-4-turbo", "gpt-4", "gpt-3.5-turbo"];
const PAGE_SIZE = 10;
const REFRESH_MS = 3000;
const state = { page: 1, status: "" };

export function badge(status: string): HTMLElement {
  return h("span", { class: `badge badge-${status}` }, statusWord(status));
}

export function tasksView(root: HTMLElement, signal: AbortSignal): void {
  replace(root, createForm(), taskList(signal));
}

/** additional_input as typed: an object, or the reason it is not one. */
export function parseObject(text: string): { value?: Record<string, unknown>; error?: string } {
  if (!text.trim()) return { value: {} };
  try {
    const value: unknown = JSON.parse(text);
    if (value === null || typeof value !== "object" || Array.isArray(value)) return { error: t("jsonInvalid", t("jsonNotObject")) };
    return { value: value as Record<string, unknown> };
  } catch (error) {
    return { error: t("jsonInvalid", (error as Error).message) };
  }
}

function field(label: string, control: HTMLElement, hint?: string): HTMLElement {
  const id = control.id || (control.id = uid("f"));
  const hintId = hint ? `${id}-hint` : undefined;
  if (hintId) control.setAttribute("aria-describedby", hintId);
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hint ? h("p", { id: hintId, class: "hint" }, hint) : null);
}

function createForm(): HTMLElement {
  const input = h("textarea", { id: "task-input", name: "input", rows: 3, required: true });
  const files = h("input", { id: "task-files", type: "file", multiple: true });
  const autoRun = h("input", { id: "task-auto-run", type: "checkbox" });
  const maxSteps = h("input", { id: "task-max-steps", type: "number", min: 1, max: 100, inputmode: "numeric", placeholder: "20" });
  const model = h("select", { id: "task-model" }, h("option", { value: "" }, t("modelDefault")), MODELS.map((m) => h("option", { value: m }, m)));
  const extra = h("textarea", { id: "task-extra", rows: 2, spellcheck: "false", placeholder: "{}" });
  const extraProblem = h("p", { id: "task-extra-problem", class: "problem", "aria-live": "polite" });
  const said = h("p", { class: "said", role: "status" });
  const submit = h("button", { type: "submit" }, t("createTask"));

  const checkExtra = (): Record<string, unknown> | undefined => {
    const parsed = parseObject(extra.value);
    extraProblem.textContent = parsed.error ?? "";
    extra.setAttribute("aria-invalid", String(Boolean(parsed.error)));
    return parsed.value;
  };
  extra.addEventListener("input", checkExtra);
  extra.setAttribute("aria-describedby", "task-extra-problem");

  const form = h(
    "form",
    {
      class: "card",
      "aria-labelledby": "new-task-title",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        const additional = checkExtra();
        if (additional === undefined) return extra.focus();
        if (!input.value.trim()) return input.focus();
        const chosen = [...(files.files ?? [])];
        const steps = maxSteps.value ? Number(maxSteps.value) : undefined;
        const body: Record<string, unknown> = { ...additional };
        if (model.value) body.model = model.value;
        if (steps) body.max_steps = steps;
        // With files, the run starts after they are uploaded (auto_run would start it before).
        if (autoRun.checked && !chosen.length) body.auto_run = true;
        submit.disabled = true;
        said.textContent = t("creating");
        try {
          const task = await api((c) => c.createTask({ input: input.value, additionalInput: body }));
          for (const file of chosen) {
            said.textContent = t("uploading", file.name);
            await api((c) => c.uploadArtifact(task.taskId, file, { fileName: file.name }));
          }
          if (autoRun.checked && chosen.length) await api((c) => c.startRun(task.taskId, { maxSteps: steps }));
          location.hash = `#/tasks/${task.taskId}`;
        } catch (error) {
          said.textContent = t("error", message(error));
        } finally {
          submit.disabled = false;
        }
      },
    },
    h("h2", { id: "new-task-title" }, t("newTask")),
    field(t("task"), input, t("taskHint")),
    field(t("files"), files),
    h("div", { class: "row" }, h("div", { class: "field check" }, autoRun, h("label", { for: autoRun.id }, t("autoRun"))), field(t("maxSteps"), maxSteps), field(t("model"), model)),
    h("div", { class: "field" }, h("label", { for: extra.id }, t("additionalInput")), extra, extraProblem),
    h("div", { class: "actions" }, submit, said),
  );
  return form;
}

function taskList(signal: AbortSignal): HTMLElement {
  const filter = h(
    "select",
    { id: "list-status" },
    ["", "created", "running", "completed", "failed"].map((s) => h("option", { value: s, selected: s === state.status }, s ? statusWord(s) : t("all"))),
  );
  const list = h("ul", { class: "tasks", "aria-busy": "true" });
  const totals = h("p", { class: "totals", "aria-live": "polite" }, t("loading"));
  const prev = h("button", { type: "button" }, t("previous"));
  const next = h("button", { type: "button" }, t("next"));
  const problem = h("p", { class: "problem", role: "alert" });
  let shown = "";

  const load = async (): Promise<void> => {
    try {
      const listed: TaskList = await api((c) => c.listTasks({ page: state.page, size: PAGE_SIZE, status: state.status || undefined }));
      problem.textContent = "";
      const { page, pages, total } = listed.pagination;
      const seen = JSON.stringify([listed, document.documentElement.lang]);
      if (seen === shown) return; // a 304: the same answer, nothing to draw
      shown = seen;
      list.setAttribute("aria-busy", "false");
      replace(list, listed.tasks.length ? listed.tasks.map(row) : h("li", { class: "empty" }, t("noTasks")));
      totals.textContent = t("pageOf", page, Math.max(pages, 1), total);
      prev.disabled = page <= 1;
      next.disabled = page >= pages;
    } catch (error) {
      problem.textContent = t("error", message(error));
    }
  };
  const reload = (): void => {
    shown = "";
    void load();
  };
  filter.addEventListener("change", () => ((state.status = filter.value), (state.page = 1), reload()));
  prev.addEventListener("click", () => ((state.page = Math.max(1, state.page - 1)), reload()));
  next.addEventListener("click", () => (state.page++, reload()));
  void (async () => {
    while (!signal.aborted) {
      await load();
      await sleep(REFRESH_MS, signal);
    }
  })();

  return h(
    "section",
    { class: "card", "aria-labelledby": "tasks-title" },
    h("div", { class: "bar" }, h("h2", { id: "tasks-title" }, t("tasks")), h("div", { class: "field inline" }, h("label", { for: filter.id }, t("statusFilter")), filter), h("button", { type: "button", onclick: reload }, t("refresh"))),
    problem,
    list,
    h("nav", { class: "pages", "aria-label": t("tasks") }, prev, totals, next),
  );
}

function row(task: Task): HTMLElement {
  return h(
    "li",
    {},
    h("a", { href: `#/tasks/${task.taskId}`, class: "task-link" }, task.input),
    h("span", { class: "meta" }, badge(task.status), " ", when(task.createdAt), task.artifacts.length ? ` · ${t("filesCount", task.artifacts.length)}` : ""),
  );
}
