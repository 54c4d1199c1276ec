// The API, only through @autogpt/client. With keys on, the first 401 asks for a key (once for every call waiting on
// it); the key lives in sessionStorage (this browser session only) and goes on REST and as the WebSocket token.

import { AutoGPTClient, AutoGPTError } from "@autogpt/client";
import { h, sleep } from "./dom";
import { t } from "./i18n";

const KEY = "autogpt.console.apiKey";
const meta = (name: string): string => document.querySelector<HTMLMetaElement>(`meta[name="${name}"]`)?.content.trim() ?? "";

/** The API's base: a deployment may name it in <meta name="autogpt-api">; else this page's own origin. */
export const BASE = meta("autogpt-api") || location.origin;
const WEBSOCKET = meta("autogpt-ws") || undefined;

let apiKey = sessionStorage.getItem(KEY) ?? undefined;
let version = 0; // which key the client holds: a 401 for an older one is retried, not asked about
let client = make();

function make(): AutoGPTClient {
  return new AutoGPTClient({ baseURL: BASE, apiKey, websocketURL: WEBSOCKET, timeout: 30_000 });
}

export const hasKey = (): boolean => Boolean(apiKey);
export const current = (): AutoGPTClient => client;

export function forgetKey(): void {
  sessionStorage.removeItem(KEY);
  apiKey = undefined;
  version++;
  client = make();
}

function useKey(key: string): void {
  apiKey = key;
  sessionStorage.setItem(KEY, key);
  version++;
  client = make();
}

/** A call to the API; a 401 asks for a key and retries with it. */
export async function api<T>(fn: (c: AutoGPTClient) => Promise<T>): Promise<T> {
  for (;;) {
    const used = version;
    try {
      return await fn(client);
    } catch (error) {
      if (!(error instanceof AutoGPTError && error.status === 401)) throw error;
      if (used !== version) continue; // the key changed meanwhile: try the new one
      await askKey(used > 0 && apiKey !== undefined, error);
    }
  }
}

let asking: Promise<void> | undefined;

function askKey(refused: boolean, error: AutoGPTError): Promise<void> {
  asking ??= prompt(refused, error).finally(() => (asking = undefined));
  return asking;
}

function prompt(refused: boolean, error: AutoGPTError): Promise<void> {
  return new Promise((resolve, reject) => {
    const field = h("input", { id: "api-key", type: "password", autocomplete: "off", required: true, spellcheck: "false" });
    const problem = h("p", { id: "api-key-problem", class: "problem", role: "alert" }, refused ? t("keyRefused") : "");
    if (refused) field.setAttribute("aria-describedby", "api-key-problem");
    const dialog = h(
      "dialog",
      { "aria-labelledby": "api-key-title", class: "key-dialog" },
      h(
        "form",
        {
          onsubmit: (e: Event) => {
            e.preventDefault();
            if (!field.value.trim()) return;
            useKey(field.value.trim());
            dialog.close();
            dialog.remove();
            resolve();
          },
        },
        h("h2", { id: "api-key-title" }, t("keyTitle")),
        h("p", {}, t("keyExplain")),
        problem,
        h("label", { for: "api-key" }, t("keyField")),
        field,
        h("div", { class: "actions" }, h("button", { type: "submit" }, t("keyUse"))),
      ),
    );
    dialog.addEventListener("cancel", () => {
      dialog.remove();
      reject(error);
    });
    document.body.append(dialog);
    dialog.showModal();
    field.focus();
  });
}

export function message(error: unknown): string {
  if (error instanceof AutoGPTError) return error.message;
  return String((error as Error)?.message ?? error);
}

export function isNotFound(error: unknown): boolean {
  return error instanceof AutoGPTError && error.status === 404;
}

export function isForbidden(error: unknown): boolean {
  return error instanceof AutoGPTError && error.status === 403;
}

/**
 * Keeps a live channel open while `signal` lasts: reconnects after a drop (1 s, doubling to 15 s), says so through
 * `state`, and stops when `done()` says the stream has nothing more to give.
 */
export async function live<T>(
  signal: AbortSignal,
  open: (c: AutoGPTClient) => AsyncGenerator<T>,
  each: (item: T) => void,
  state: (s: "live" | "reconnecting" | "ended") => void,
  done: () => boolean = () => false,
): Promise<void> {
  let delay = 1000;
  while (!signal.aborted) {
    try {
      for await (const item of open(client)) {
        if (signal.aborted) return;
        state("live");
        delay = 1000;
        each(item);
      }
    } catch {
      // a dropped or refused socket: reconnect below
    }
    if (signal.aborted) return;
    if (done()) return state("ended");
    state("reconnecting");
    await sleep(delay, signal);
    delay = Math.min(delay * 2, 15_000);
  }
}
