// Boots the window: fetches the status, listens to the core's events, switches views.
import * as api from "./api.js";
import { setStatus, store, subscribe } from "./store.js";
import overview from "./views/overview.js";
import prices from "./views/prices.js";
import models from "./views/models.js";
import hardware from "./views/hardware.js";
import logs from "./views/logs.js";
import settings from "./views/settings.js";

const views = { overview, prices, models, hardware, logs, settings };
let current = "overview";
let teardown = () => {};

// A short message in the corner: an error unless `kind` is "ok".
export function toast(message, kind = "error") {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.className = kind;
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (el.hidden = true), 6000);
}

function header(s) {
  const state = document.getElementById("state");
  const offline = s.link.state !== "connected";
  const kind = offline ? "offline" : s.hosting;
  state.className = `badge ${kind}`;
  // The owner's own pause needs no explanation; automatic ones do ("Paused: on battery").
  const reason = s.pause_reason && s.pause_reason !== "paused by the owner" ? `: ${s.pause_reason}` : "";
  state.textContent = offline ? "Offline" : { hosting: "Hosting", draining: "Draining", paused: `Paused${reason}` }[s.hosting];
  document.getElementById("link").textContent = offline ? (s.link.reason || s.link.state) : `Connected · Island ${s.island_id.slice(0, 8)}`;
}

function show(name) {
  teardown();
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
subscribe((s) => s.status && header(s.status));
api.onEvent("status", setStatus);
api.getStatus().then(setStatus).catch((e) => toast(e.message));
show(current);
