// Hardware: CPU, memory, disk and power; each GPU with whether it is shared and its live
// figures as small charts; the host controls (thermal limit, battery, hosting hours).
import * as api from "../api.js";
import { gpuId, subscribe } from "../store.js";
import { toast } from "../main.js";
import { bar, card, field, h, spark, typingIn } from "./util.js";

const DAYS = [["mon", "Monday"], ["tue", "Tuesday"], ["wed", "Wednesday"], ["thu", "Thursday"], ["fri", "Friday"], ["sat", "Saturday"], ["sun", "Sunday"]];
const fmt = (v, unit) => (v === null || v === undefined ? "n/a" : `${v}${unit}`);

function machine(s, history) {
  const hw = s.hardware, u = hw.usage;
  const power = u.on_battery === true ? "On battery" : u.on_battery === false ? "On mains power" : "No battery";
  return card("This machine",
    h("p", {}, `${hw.cpu_model || "CPU"} · ${hw.cpu_cores} logical cores · ${u.cpu_percent.toFixed(0)} % busy`),
    spark(history.cpu, 100, { label: "CPU load, last 10 minutes" }),
    h("p", {}, `Memory: ${(u.memory_used_mb / 1024).toFixed(1)} of ${(hw.ram_mb / 1024).toFixed(1)} GB`), bar(u.memory_used_mb, hw.ram_mb, "Memory in use"),
    h("p", {}, `Model cache disk: ${u.disk_used_gb} of ${u.disk_total_gb} GB`), bar(u.disk_used_gb, u.disk_total_gb, "Disk in use"),
    h("p", { class: "muted" }, power));
}

// One checkbox per GPU for the view's life: the cards around it are rebuilt with every new
// figure, the box keeps its identity (and focus) and only follows the saved choice.
function shareBox(boxes, g, store) {
  const id = gpuId(g);
  let box = boxes.get(id);
  if (!box) {
    box = h("input", { type: "checkbox", class: "gpu-share", "data-gpu": id, "aria-label": `Share ${g.name}`, onchange: (e) => {
      const shared = store.status.hardware.gpus.filter((x) => x.selected).map(gpuId);
      const next = e.target.checked ? [...new Set([...shared, id])] : shared.filter((d) => d !== id);
      api.setGpus(next).catch((err) => { e.target.checked = !e.target.checked; toast(err.message); });
    } });
    boxes.set(id, box);
  }
  box.checked = g.selected;
  return box;
}

function gpu(g, s, history, box) {
  const live = g.live || {};
  const id = gpuId(g);
  const hist = history.gpus[id] || { util: [], temp: [], vram: [] };
  const limit = s.settings.max_gpu_temp_c;
  return card(`GPU ${g.index}: ${g.name}`,
    h("label", {}, box, " Share with Cargos"),
    h("p", { class: "muted" }, `${(g.vram_mb / 1024).toFixed(1)} GB${g.driver_version ? ` · driver ${g.driver_version}` : ""}${live.power_draw_w !== undefined && live.power_draw_w !== null ? ` · ${live.power_draw_w.toFixed(0)} of ${live.power_limit_w?.toFixed(0) ?? "?"} W` : ""}`),
    h("div", { class: "charts" },
      h("figure", {}, h("figcaption", {}, `Load ${fmt(live.utilization_percent, " %")}`), spark(hist.util, 100, { label: "GPU load" })),
      h("figure", {}, h("figcaption", {}, `Temperature ${fmt(live.temperature_c, " °C")}`), spark(hist.temp, Math.max(100, limit + 10), { label: "GPU temperature", limit })),
      h("figure", {}, h("figcaption", {}, `Memory ${fmt(live.memory_used_mb === undefined || live.memory_used_mb === null ? null : (live.memory_used_mb / 1024).toFixed(1), " GB")}`), spark(hist.vram, g.vram_mb, { label: "GPU memory in use" }))));
}

function controls(s) {
  const c = s.settings;
  const temp = h("input", { id: "max-gpu-temp", value: c.max_gpu_temp_c, inputmode: "numeric", size: 4 });
  const battery = h("input", { type: "checkbox", id: "pause-on-battery", checked: c.pause_on_battery });
  const days = Object.fromEntries(DAYS.map(([k, name]) => [k, h("input", { id: `hours-${k}`, "aria-label": `Hosting hours on ${name}`, value: (c.schedule[k] || []).join(", "), placeholder: "e.g. 09:00-17:00, 20:00-23:00", size: 28 })]));
  const save = () => api.editSettings({
    max_gpu_temp_c: temp.value, pause_on_battery: battery.checked,
    schedule: Object.fromEntries(DAYS.map(([k]) => [k, days[k].value])),
  }).then(() => toast("Host controls saved", "ok")).catch((e) => toast(e.message));
  return h("section", { class: "card wide", id: "host-controls" }, h("h2", {}, "Host controls"),
    field("Hold GPU jobs at (°C)", temp, `Taken again ${c.temp_hysteresis_c} °C below the limit.`),
    h("label", {}, battery, " Pause hosting while on battery"),
    h("h3", {}, "Hosting hours"),
    h("p", { class: "muted" }, "Leave every day empty to host at any time. Once a day has hours, days left empty host nothing. A range past midnight (22:00-06:00) runs into the next day."),
    h("table", { class: "schedule" }, DAYS.map(([k, name]) => h("tr", {}, h("td", {}, name), h("td", {}, days[k])))),
    h("p", {}, h("button", { class: "primary", id: "save-host-controls", onclick: save }, "Save host controls")));
}

export default function hardware(main, store) {
  const live = h("div", { class: "contents" });
  const boxes = new Map();
  let form = null, shownSettings = "";
  const render = ({ status: s, history }) => {
    if (!s) return;
    const gpus = s.hardware.gpus.map((g) => gpu(g, s, history, shareBox(boxes, g, store)));
    live.replaceChildren(machine(s, history), ...(gpus.length ? gpus : [card("GPUs", h("p", { class: "muted" }, "No GPU found: Island runs CPU and WASM Cargos."))]));
    // The form is rebuilt only when the settings change and nobody is typing in it.
    const now = JSON.stringify([s.settings.max_gpu_temp_c, s.settings.pause_on_battery, s.settings.schedule]);
    if (now !== shownSettings && !typingIn(form)) {
      const next = controls(s);
      form ? form.replaceWith(next) : main.append(next);
      form = next;
      shownSettings = now;
    }
  };
  main.replaceChildren(live);
  const off = subscribe(render);
  render(store);
  // The charts move with the history (sampled every 5 s) even when the status is quiet.
  const timer = setInterval(() => render(store), 5000);
  return () => { off(); clearInterval(timer); };
}
