// Prices: the default asking price and per-Cargo prices, saved to config.toml by the core.
import * as api from "../api.js";
import { subscribe } from "../store.js";
import { toast } from "../main.js";
import { card, h, typingIn } from "./util.js";

export default function prices(main, store) {
  // A price the core refuses (code "config": not a price) marks its field; anything else is
  // only a toast.
  const save = (workload, price, field) => {
    if (field) { field.removeAttribute("aria-invalid"); field.classList.remove("invalid"); }
    return api.setPrice(workload, price).catch((e) => {
      if (field && e.code === "config") {
        field.setAttribute("aria-invalid", "true");
        field.classList.add("invalid");
        field.focus();
      }
      toast(e.message);
    });
  };
  let shown = "";
  const render = ({ status: s }) => {
    // Rebuilt only when the prices change, and never while the owner types.
    if (!s || typingIn(main) || JSON.stringify(s.pricing) === shown) return;
    shown = JSON.stringify(s.pricing);
    const p = s.pricing;
    const def = h("input", { id: "default-price", value: p.default_price ?? "", placeholder: "e.g. 1.0", inputmode: "decimal", "aria-label": "Default price" });
    const rows = Object.entries(p.workloads).map(([slug, price]) => {
      const input = h("input", { value: price, inputmode: "decimal", "aria-label": `Price for ${slug}` });
      return h("tr", {}, h("td", {}, slug), h("td", {}, input),
        h("td", {}, h("button", { class: "plain", onclick: () => save(slug, input.value.trim(), input) }, "Save"),
          " ", h("button", { class: "plain", onclick: () => save(slug, null) }, "Remove")));
    });
    const slug = h("input", { id: "new-slug", placeholder: "Cargo slug, e.g. llm-chat", "aria-label": "Cargo slug" });
    const price = h("input", { id: "new-price", placeholder: "credits per job", inputmode: "decimal", "aria-label": "Price in credits per job" });
    main.replaceChildren(
      card("Default asking price",
        h("p", { class: "muted" }, "Credits per job for every Cargo without its own price. Leave empty to use each Cargo's default."),
        def, " ", h("button", { class: "primary", onclick: () => save(null, def.value.trim() || null, def) }, "Save")),
      h("section", { class: "card wide" }, h("h2", {}, "Per-Cargo prices"),
        rows.length ? h("table", {}, h("tr", {}, h("th", {}, "Cargo"), h("th", {}, "Credits per job"), h("th", {}, "")), rows)
                    : h("p", { class: "muted" }, "No per-Cargo prices yet."),
        h("p", {}, slug, " ", price, " ", h("button", { class: "primary", id: "add-price", onclick: () => {
          if (!slug.value.trim()) return toast("Name the Cargo (its slug) first");
          save(slug.value.trim(), price.value.trim(), price);
        } }, "Add"))));
  };
  const off = subscribe(render);
  render(store);
  return off;
}
