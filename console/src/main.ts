// The console's shell: header (navigation, language, key), and a hash router: #/ tasks, #/tasks/<id>, #/agent.

import "./styles.css";
import { forgetKey, hasKey } from "./api";
import { agentView } from "./agent";
import { h, replace } from "./dom";
import { lang, setLang, t, type Lang } from "./i18n";
import { taskView } from "./task";
import { tasksView } from "./tasks";

const header = document.getElementById("top") as HTMLElement;
const main = document.getElementById("main") as HTMLElement;
let view = new AbortController();
let first = true;

function drawHeader(): void {
  const language = h(
    "select",
    { id: "language", "aria-label": t("language") },
    h("option", { value: "en", lang: "en", selected: lang === "en" }, "English"),
    h("option", { value: "zh", lang: "zh-CN", selected: lang === "zh" }, "中文"),
  );
  language.addEventListener("change", () => {
    setLang(language.value as Lang);
    route();
  });
  const route_ = location.hash.startsWith("#/agent") ? "agent" : "tasks";
  replace(
    header,
    h("a", { class: "skip", href: "#main", onclick: (e: Event) => (e.preventDefault(), main.focus()) }, t("skip")),
    h("h1", {}, h("a", { href: "#/" }, t("title"))),
    h(
      "nav",
      { "aria-label": t("title") },
      h("a", { href: "#/", "aria-current": route_ === "tasks" ? "page" : null }, t("navTasks")),
      h("a", { href: "#/agent", "aria-current": route_ === "agent" ? "page" : null }, t("navAgent")),
    ),
    h(
      "div",
      { class: "tools" },
      language,
      hasKey() ? h("button", { type: "button", class: "secondary small", onclick: () => (forgetKey(), route()) }, t("keyForget")) : null,
    ),
  );
}

function route(): void {
  view.abort();
  view = new AbortController();
  document.title = t("title");
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  drawHeader();
  const path = location.hash.replace(/^#/, "") || "/";
  const task = /^\/tasks\/([^/?]+)/.exec(path);
  const done = task
    ? taskView(main, view.signal, decodeURIComponent(task[1] ?? ""))
    : path.startsWith("/agent")
      ? agentView(main, view.signal)
      : tasksView(main, view.signal);
  void Promise.resolve(done).then(() => {
    if (!first) (main.querySelector<HTMLElement>("h2[tabindex]") ?? main).focus(); // a screen reader hears where it went
    first = false;
  });
}

window.addEventListener("hashchange", () => {
  if (location.hash === "#main") return;
  route();
});
route();
