// Boots the window: fetches the status, listens to the core's events, switches views.
import * as api from "./api.js";
import { seedHistory, setStatus, store, subscribe } from "./store.js";
import overview from "./views/overview.js";
import prices from "./views/prices.js";
import models from "./views/models.js";
import hardware from "./views/hardware.js";
import logs from "./views/logs.js";
import settings from "./views/settings.js";

const views = { overview, prices, models, hardware, logs, settings };
let current = "overview";
let teardown = () => {};

// A short message in the corner: an error unless `kind` is "ok". It goes after a few
// seconds, on a click, and when the view changes; errors are announced at once (alert),
// confirmations politely (status).
export function toast(message, kind = "error") {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.className = kind;
  el.setAttribute("role", kind === "error" ? "alert" : "status");
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(hideToast, kind === "error" ? 6000 : 3500);
}

function hideToast() {
  clearTimeout(toast.timer);
  document.getElementById("toast").hidden = true;
}

// The header says what the core's headline says: the same words as the Hosting card and
// the tray, so the three never disagree.
function header(s) {
  const state = document.getElementById("state");
  state.className = `badge ${s.headline.kind}`;
  state.textContent = s.headline.title;
  document.getElementById("link").textContent = s.link.state === "connected"
    ? `Connected · Island ${s.island_id.slice(0, 8)}`
    : (s.headline.detail || "");
}

// The window follows the system's light or dark theme. The webview's media query follows
// GTK's dark preference; the shell also reads a dark theme from its name (Adwaita-dark),
// which the media query may miss. A "light" from the shell is not forced over the media
// query: the shell says light whenever the name has no "dark" in it.
function followTheme() {
  const win = window.__TAURI__?.window?.getCurrentWindow?.();
  if (!win) return;
  const apply = (theme) => {
    if (theme === "dark") document.documentElement.dataset.theme = "dark";
    else delete document.documentElement.dataset.theme;
  };
  win.theme().then(apply).catch(() => {});
  win.onThemeChanged?.(({ payload }) => apply(payload)).catch?.(() => {});
}

function show(name) {
  teardown();
  hideToast();
  current = name;
  document.querySelectorAll("nav button").forEach((b) => b.toggleAttribute("aria-current", b.dataset.view === name) || b.removeAttribute("aria-current"));
  document.querySelector(`nav button[data-view="${name}"]`).setAttribute("aria-current", "page");
  const main = document.getElementById("view");
  main.replaceChildren();
  teardown = views[name](main, store) || (() => {});
}

// A fault in a view is shown, not swallowed: the owner (and the end-to-end test) see it.
window.addEventListener("error", (e) => toast(`Island's window hit an error: ${e.message}`));
window.addEventListener("unhandledrejection", (e) => toast(`Island's window hit an error: ${e.reason?.message || e.reason}`));

document.querySelectorAll("nav button").forEach((b) => b.addEventListener("click", () => show(b.dataset.view)));
document.getElementById("toast").addEventListener("click", hideToast);
followTheme();
subscribe((s) => s.status && header(s.status));
api.onEvent("status", setStatus);
api.getStatus().then((s) => {
  setStatus(s);
  // The frame after next is the first one painted with the status in it.
  requestAnimationFrame(() => requestAnimationFrame(() => api.windowPainted().catch(() => {})));
}).then(() => api.recentFigures()).then(seedHistory).catch((e) => toast(e.message));
show(current);
