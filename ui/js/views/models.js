// Models: the model cache against its budget (downloads under way counted), adding a model by
// hf:// URI or https URL with a live bar, cancelling a download, pinning and evicting, and the
// coordinator's preload recommendations ranked by demand. Each card is rebuilt only when its
// own data changes, so the form keeps what the owner types while downloads move.
import * as api from "../api.js";
import { subscribe } from "../store.js";
import { toast } from "../main.js";
import { bar, bytes, duration, field, h } from "./util.js";

const when = (ms) => (ms ? new Date(ms).toLocaleString() : "—");

// A card whose body is rebuilt when `key(status)` changes.
function part(title, id, key, build) {
  const body = h("div", { class: "contents" });
  const el = h("section", { class: "card wide", id }, h("h2", {}, title), body);
  let shown;
  return {
    el,
    update(s) {
      const k = JSON.stringify(key(s));
      if (k === shown) return;
      shown = k;
      body.replaceChildren(...build(s).flat().filter(Boolean));
    },
  };
}

function gaugeBody(s) {
  const m = s.models, budget = m.budget_bytes || s.settings.max_cache_gb * 1024 ** 3;
  const after = m.used_bytes + m.incoming_bytes;
  return [
    h("p", {}, h("span", { class: "num", id: "cache-used" }, bytes(m.used_bytes)), " used",
      m.incoming_bytes ? h("span", { id: "cache-incoming" }, ` + ${bytes(m.incoming_bytes)} downloading`) : null,
      ` of ${bytes(budget)} budget`),
    bar(after, budget, "Model cache budget in use, downloads included"),
    after > budget ? h("p", { class: "error" }, "Over budget: the least recently used models that are not pinned or in use are evicted before the next download.") : null,
    h("p", { class: "muted" }, `Kept in ${m.dir || s.settings.model_cache_dir}. Change the budget in Settings.`),
    m.error ? h("p", { class: "error" }, m.error) : null,
  ];
}

function downloadsBody(s, failures) {
  const rows = s.models.downloads.map((d) => {
    // The rate is over the last seconds: a stalled download says so rather than guessing.
    const pace = d.rate ? `${bytes(d.rate)}/s · ${d.total ? duration((1000 * (d.total - d.done)) / d.rate) : "?"} left` : "stalled";
    const figures = `${bytes(d.done)} of ${d.total ? bytes(d.total) : "?"} · ${pace}`;
    return h("tr", { "data-model": d.model },
      h("td", { class: "path" }, d.model),
      h("td", {}, bar(d.done, d.total || 0, `Download of ${d.model}`), h("small", { class: "figures" }, figures)),
      h("td", {}, h("button", { class: "plain cancel-download", "aria-label": `Cancel the download of ${d.model}`,
        onclick: () => api.cancelModelDownload(d.model).catch((e) => toast(e.message)) }, "Cancel")));
  });
  return [
    rows.length ? h("table", { id: "downloads" }, h("tr", {}, ["Model", "Progress", ""].map((t) => h("th", {}, t))), rows)
      : h("p", { class: "muted", id: "downloads-empty" }, "No download under way."),
    failures.length ? h("ul", { id: "download-failures" }, failures.map((f) => h("li", { class: "error" }, f))) : null,
  ];
}

// Evicting asks once more: the first click arms the button, the second evicts.
function evictButton(x) {
  const b = h("button", { class: "plain evict", "aria-label": `Evict ${x.name}`, disabled: x.in_use, title: x.in_use ? "A running job uses it" : null });
  b.textContent = "Evict";
  b.addEventListener("click", () => {
    if (b.dataset.armed !== "yes") {
      b.dataset.armed = "yes";
      b.textContent = "Really evict?";
      return;
    }
    b.disabled = true;
    api.evictModel(x.file).catch((e) => { toast(e.message); b.disabled = false; });
  });
  b.addEventListener("blur", () => { delete b.dataset.armed; b.textContent = "Evict"; });
  return b;
}

function modelsBody(s) {
  const rows = s.models.models.map((x) => h("tr", { "data-file": x.file },
    h("td", {}, x.name), h("td", { class: "path" }, x.uris[0] || x.file), h("td", {}, x.format),
    h("td", {}, bytes(x.bytes)), h("td", {}, when(x.last_used_ms)),
    h("td", { class: "state" }, [x.in_use ? "In use" : null, x.pinned ? "Pinned" : null].filter(Boolean).join(", ") || "—"),
    h("td", { class: "controls" },
      h("button", { class: "plain pin", "aria-label": `${x.pinned ? "Unpin" : "Pin"} ${x.name}`,
        onclick: () => api.pinModel(x.file, !x.pinned).catch((e) => toast(e.message)) }, x.pinned ? "Unpin" : "Pin"),
      evictButton(x))));
  return [
    rows.length
      ? h("table", { id: "models" }, h("tr", {}, ["Name", "Source", "Format", "Size", "Last used", "State", ""].map((t) => h("th", {}, t))), rows)
      : h("p", { class: "muted", id: "models-empty" }, "No models cached yet."),
    h("p", { class: "muted" }, "Pinned models stay through evictions; models a running job uses cannot be evicted. Files you put in the folder yourself are listed and never evicted to make room."),
  ];
}

function preloadBody(s) {
  const cached = new Set(s.models.models.flatMap((m) => m.uris));
  const coming = new Set(s.models.downloads.map((d) => d.model));
  const state = (url) => (!url ? "No model named" : cached.has(url) ? "Cached" : coming.has(url) ? "Downloading" : "Not cached");
  const hints = s.preload_hints;
  return [hints.length
    ? h("table", { id: "preload-hints" }, h("tr", {}, ["Cargo", "Model", "Demand", "Runtime", "Est. credits per job", "State"].map((t) => h("th", {}, t))),
        hints.map((p) => h("tr", {}, h("td", {}, p.workload_slug), h("td", { class: "path" }, p.model_url || "—"),
          h("td", { class: "demand" }, String(Math.round(p.demand * 10) / 10)), h("td", {}, p.runtime_type),
          h("td", {}, p.estimated_earnings_per_job || "—"), h("td", {}, state(p.model_url)))))
    : h("p", { class: "muted" }, "The coordinator has not recommended any model for this Island yet."),
  h("p", { class: "muted" }, "Recommended models are downloaded in the background when they fit this machine's memory and the budget; the log says why one was skipped.")];
}

function adder() {
  const uri = h("input", { id: "model-uri", placeholder: "hf://owner/repo or hf://owner/repo:file.gguf", spellcheck: "false", autocomplete: "off" });
  const sha = h("input", { id: "model-sha256", placeholder: "optional", spellcheck: "false", autocomplete: "off" });
  const error = h("p", { class: "error", id: "model-error", role: "alert" });
  const go = h("button", { class: "primary", id: "add-model" }, "Download");
  const add = async () => {
    error.textContent = "";
    uri.removeAttribute("aria-invalid");
    if (!uri.value.trim()) {
      error.textContent = "Enter a model URI, for example hf://TheBloke/Mistral-7B-Instruct-v0.2-GGUF";
      return uri.focus();
    }
    go.disabled = true;
    try {
      const how = await api.pullModel(uri.value.trim(), sha.value.trim());
      const said = { cached: "That model is already in the cache", ready: "Downloaded into the cache", downloading: "Download started" };
      toast(said[how] || "Download started", "ok");
      uri.value = sha.value = "";
    } catch (e) {
      error.textContent = e.message;
      uri.setAttribute("aria-invalid", "true");
      uri.focus();
    } finally {
      go.disabled = false;
    }
  };
  go.addEventListener("click", add);
  uri.addEventListener("keydown", (e) => e.key === "Enter" && add());
  return h("section", { class: "card wide" }, h("h2", {}, "Add a model"),
    h("div", { class: "controls" },
      field("Model URI", uri, "hf://owner/repo picks the best file (GGUF Q4_K_M first); hf://owner/repo:path names one; https:// URLs work too."),
      field("Expected sha256", sha, "Checked when the download ends; a mismatch discards it.")),
    go, error);
}

export default function models(main, store) {
  const failures = [];
  const parts = [
    part("Model cache", "cache-gauge", (s) => [s.models.used_bytes, s.models.incoming_bytes, s.models.budget_bytes, s.models.dir, s.models.error], gaugeBody),
    part("Downloads", "model-downloads", (s) => [s.models.downloads, failures], (s) => downloadsBody(s, failures)),
    part("Cached models", "cached-models", (s) => s.models.models, modelsBody),
    part("Preload recommendations", "preload", (s) => [s.preload_hints, s.models.models.map((m) => m.uris), s.models.downloads.map((d) => d.model)], preloadBody),
  ];
  main.replaceChildren(parts[0].el, adder(), ...parts.slice(1).map((p) => p.el));
  const render = ({ status: s }) => s && parts.forEach((p) => p.update(s));
  // A download that failed or was cancelled leaves the list; say why where it was.
  const offProgress = api.onEvent("model-progress", (e) => {
    if (!e.error) return;
    failures.unshift(`${e.model}: ${e.error}`);
    failures.length = Math.min(failures.length, 3);
    render(store);
  });
  const off = subscribe(render);
  render(store);
  return () => { off(); offProgress(); };
}
