// Hardware: CPU, memory, disk and power; each GPU with its live figures and whether it is shared.
import * as api from "../api.js";
import { subscribe } from "../store.js";
import { toast } from "../main.js";
import { card, h } from "./util.js";

// Widths are set through the CSSOM: the strict CSP forbids inline style attributes.
function bar(used, total) {
  const fill = h("span");
  fill.style.width = `${total ? Math.min(100, (100 * used) / total) : 0}%`;
  return h("div", { class: "bar", role: "meter", "aria-valuenow": used, "aria-valuemax": total }, fill);
}

export default function hardware(main, store) {
  const render = ({ status: s }) => {
    if (!s) return;
    const hw = s.hardware, u = hw.usage;
    const power = u.on_battery === true ? "On battery" : u.on_battery === false ? "On mains power" : "No battery";
    const machine = card("This machine",
      h("p", {}, `${hw.cpu_model || "CPU"} · ${hw.cpu_cores} logical cores · ${u.cpu_percent.toFixed(0)} % busy`),
      h("p", {}, `Memory: ${(u.memory_used_mb / 1024).toFixed(1)} of ${(hw.ram_mb / 1024).toFixed(1)} GB`), bar(u.memory_used_mb, hw.ram_mb),
      h("p", {}, `Model cache disk: ${u.disk_used_gb} of ${u.disk_total_gb} GB`), bar(u.disk_used_gb, u.disk_total_gb),
      h("p", { class: "muted" }, power));
    const shared = hw.gpus.filter((g) => g.selected).map((g) => g.uuid || String(g.index));
    const gpus = hw.gpus.map((g) => {
      const live = g.live || {};
      const id = g.uuid || String(g.index);
      const box = h("input", { type: "checkbox", checked: g.selected, "aria-label": `Share ${g.name}`, onchange: (e) => {
        const next = e.target.checked ? [...shared, id] : shared.filter((d) => d !== id);
        api.setGpus(next).catch((err) => toast(err.message));
      } });
      return card(`GPU ${g.index}: ${g.name}`,
        h("label", {}, box, " Share with Cargos"),
        h("p", {}, `${(g.vram_mb / 1024).toFixed(1)} GB · load ${live.utilization_percent ?? "n/a"} % · ${live.temperature_c ?? "n/a"} °C · ${live.power_draw_w?.toFixed(0) ?? "n/a"} W`),
        bar(live.memory_used_mb ?? 0, g.vram_mb));
    });
    main.replaceChildren(machine, ...(gpus.length ? gpus : [card("GPUs", h("p", { class: "muted" }, "No GPU found: Island runs CPU and WASM Cargos."))]));
  };
  const off = subscribe(render);
  render(store);
  return off;
}
