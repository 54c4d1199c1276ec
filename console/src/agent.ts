// The agent's page: /status (version, capabilities, tasks, spend against the budget, limits), every task's log
// lines with a level filter, and the operator's restart.

import { api, isForbidden, live, message } from "./api";
import { h, replace, sleep } from "./dom";
import { t, when } from "./i18n";

const LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"];

export function agentView(root: HTMLElement, signal: AbortSignal): void {
  const figures = h("dl", { class: "figures", "aria-busy": "true" });
  const said = h("p", { class: "said", role: "status" });
  const level = h("select", { id: "log-level" }, LEVELS.map((l) => h("option", { value: l, selected: l === "INFO" }, l)));
  const logs = h("ol", { class: "logs", tabindex: 0, "aria-label": t("logs") }, h("li", { class: "empty" }, t("noLogs")));
  const liveState = h("span", { class: "live-state", "aria-live": "polite" });
  const restart = h("button", { type: "button", class: "danger" }, t("restart"));

  restart.addEventListener("click", async () => {
    if (!confirm(t("restartConfirm"))) return;
    try {
      const done = await api((c) => c.restart());
      said.textContent = t("restarted", done.message);
    } catch (error) {
      said.textContent = isForbidden(error) ? t("operatorOnly") : t("error", message(error));
    }
  });

  void (async () => {
    while (!signal.aborted) {
      try {
        const s = (await api((c) => c.status())) as unknown as Record<string, any>;
        const usage = s.apiUsage ?? {};
        const budget = usage.budgetUsd === null || usage.budgetUsd === undefined ? t("noBudget") : t("budget", `$${usage.budgetUsd}`);
        const limits = Object.entries((s.limits ?? {}) as Record<string, unknown>).map(([k, v]) => `${k}: ${v}`).join(" · ");
        const rows: [string, string][] = [
          [t("version"), `${s.version} (${s.status})`],
          [t("capabilities"), (s.capabilities ?? []).join(", ")],
          [t("activeTasks"), String(s.activeTasks)],
          [t("totalTasks"), String(s.totalTasks)],
          [t("spend"), `$${Number(usage.openaiCost ?? 0).toFixed(4)} (${budget})`],
          [t("tokensUsed"), String(usage.openaiTokensUsed ?? 0)],
          [t("uptime"), when(s.uptime)],
          [t("limits"), limits],
        ];
        figures.setAttribute("aria-busy", "false");
        replace(figures, rows.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v))));
      } catch (error) {
        said.textContent = t("error", message(error));
      }
      await sleep(5000, signal);
    }
  })();

  let stream = new AbortController();
  const follow = (): void => {
    stream.abort();
    stream = new AbortController();
    const both = AbortSignal.any([signal, stream.signal]);
    void live(
      both,
      (c) => c.streamLogs({ level: level.value }, { signal: both }),
      (r) => {
        logs.querySelector(".empty")?.remove();
        const line = h("li", { class: `log log-${r.level.toLowerCase()}` }, h("span", { class: "log-level" }, r.level), " ", h("time", {}, when(r.timestamp)), " ", r.taskId ? h("a", { href: `#/tasks/${r.taskId}` }, r.taskId.slice(0, 8)) : "", " ", r.message);
        logs.append(line);
        while (logs.children.length > 500) logs.firstElementChild?.remove();
      },
      (s) => (liveState.textContent = s === "reconnecting" ? t("reconnecting") : s === "live" ? t("live") : ""),
    );
  };
  level.addEventListener("change", follow);
  follow();

  replace(
    root,
    h("section", { class: "card", "aria-labelledby": "agent-title" }, h("h2", { id: "agent-title", tabindex: -1 }, t("agent")), figures, h("div", { class: "actions" }, restart), said),
    h(
      "section",
      { class: "card", "aria-labelledby": "agent-logs-title" },
      h("div", { class: "bar" }, h("h2", { id: "agent-logs-title" }, t("logs")), h("div", { class: "field inline" }, h("label", { for: level.id }, t("level")), level), liveState),
      logs,
    ),
  );
}
