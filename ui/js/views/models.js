// Models: what the model cache holds on disk against its budget, and the coordinator's recent
// preload recommendations. Downloading from hf:// URIs, pinning and evicting come with the
// model cache's next part; until then the view shows the real state and no such controls.
import { subscribe } from "../store.js";
import { bar, bytes, card, h } from "./util.js";

const GB = 1024 ** 3;
const when = (ms) => (ms ? new Date(ms).toLocaleString() : "—");

export default function models(main, store) {
  let shown = "";
  const render = ({ status: s }) => {
    if (!s) return;
    // The status changes often; the cache only when a scan finds something new.
    const now = JSON.stringify([s.models, s.settings.max_cache_gb, s.preload_hints]);
    if (now === shown) return;
    shown = now;
    const m = s.models, budget = s.settings.max_cache_gb;
    const gauge = card("Model cache",
      h("p", {}, h("span", { class: "num", id: "cache-used" }, bytes(m.used_bytes)), ` of ${budget} GB budget used`),
      bar(m.used_bytes, budget * GB, "Model cache budget in use"),
      m.used_bytes > budget * GB ? h("p", { class: "error" }, "Over budget: eviction arrives with the model cache's next part; remove files by hand meanwhile.") : null,
      h("p", { class: "muted" }, `Kept in ${m.dir || s.settings.model_cache_dir}. Change the budget in Settings.`),
      m.error ? h("p", { class: "error" }, m.error) : null);
    const rows = m.models.map((x) => h("tr", {}, h("td", {}, x.name), h("td", { class: "path" }, x.file), h("td", {}, x.format),
      h("td", {}, bytes(x.bytes)), h("td", {}, when(x.last_used_ms)), h("td", {}, x.pinned ? "Pinned" : "—")));
    const list = h("section", { class: "card wide" }, h("h2", {}, "Cached models"),
      rows.length
        ? h("table", { id: "models" }, h("tr", {}, ["Name", "File", "Format", "Size", "Last used", "Pinned"].map((t) => h("th", {}, t))), rows)
        : h("p", { class: "muted", id: "models-empty" }, "No models cached yet."),
      h("p", { class: "muted" }, "Island downloads starter models at start-up and the ones the coordinator recommends. Adding models by hf:// URI, pinning and evicting from this window come next; from a terminal: island models pull|pin|evict."));
    const hints = s.preload_hints;
    const preload = h("section", { class: "card wide" }, h("h2", {}, "Preload recommendations"),
      hints.length
        ? h("table", { id: "preload-hints" }, h("tr", {}, ["Cargo", "Model", "Runtime", "Est. credits per job"].map((t) => h("th", {}, t))),
            hints.map((p) => h("tr", {}, h("td", {}, p.workload_slug), h("td", { class: "path" }, p.model_url || "—"), h("td", {}, p.runtime_type), h("td", {}, p.estimated_earnings_per_job || "—"))))
        : h("p", { class: "muted" }, "The coordinator has not recommended any model for this Island yet."));
    main.replaceChildren(gauge, list, preload);
  };
  const off = subscribe(render);
  render(store);
  return off;
}
