// Models: the model cache as the core reports it (its place and disk budget) and the
// coordinator's recent preload recommendations. Downloading, pinning and evicting arrive
// with the model cache itself; until then this shows the real, empty state.
import { subscribe } from "../store.js";
import { bar, card, h } from "./util.js";

export default function models(main, store) {
  const render = ({ status: s }) => {
    if (!s) return;
    const c = s.settings;
    const budget = card("Model cache",
      h("p", {}, h("span", { class: "num", id: "cache-used" }, "0 GB"), ` of ${c.max_cache_gb} GB budget used`),
      bar(0, c.max_cache_gb, "Model cache budget in use"),
      h("p", { class: "muted" }, `Kept in ${c.model_cache_dir}. Change the budget in Settings.`));
    const list = h("section", { class: "card wide" }, h("h2", {}, "Cached models"),
      h("p", { class: "muted", id: "models-empty" }, "No models cached. Downloading models from hf:// URIs, pinning and evicting come with the model cache in a coming version of Island."));
    const hints = s.preload_hints;
    const preload = h("section", { class: "card wide" }, h("h2", {}, "Preload recommendations"),
      hints.length
        ? h("table", { id: "preload-hints" }, h("tr", {}, h("th", {}, "Cargo"), h("th", {}, "Model"), h("th", {}, "Runtime"), h("th", {}, "Est. credits per job")),
            hints.map((p) => h("tr", {}, h("td", {}, p.workload_slug), h("td", {}, p.model_url || "—"), h("td", {}, p.runtime_type), h("td", {}, p.estimated_earnings_per_job || "—"))))
        : h("p", { class: "muted" }, "The coordinator has not recommended any model for this Island yet."));
    main.replaceChildren(budget, list, preload);
  };
  const off = subscribe(render);
  render(store);
  return off;
}
